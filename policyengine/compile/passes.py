"""The checking passes: declarations, roles, names, path patterns, conflicts."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from typing import TypeVar

from policyengine import ast
from policyengine.authn.scopes import is_scope_token
from policyengine.compile.state import CompileState, Declared, FlatRoute
from policyengine.errors import one_of
from policyengine.hardening import Permission
from policyengine.paths import normalize_path
from policyengine.patterns import PatternError, parse_pattern
from policyengine.source import Span

T = TypeVar("T")


def collect_declarations(state: CompileState) -> None:
    """Index every named declaration; a name defined twice is an error naming both places."""
    seen_names: dict[str, ast.PolicyName] = {}
    for file in state.policy_set.files:
        for statement in file.statements:
            if isinstance(statement, ast.PolicyName):
                seen_names.setdefault(statement.name, statement)
            elif isinstance(statement, ast.Permit):
                _permit(state, statement)
            elif isinstance(statement, ast.RoleDecl):
                _declare(state, state.roles, statement.name, statement, "role")
            elif isinstance(statement, ast.SchemaDecl):
                _declare(state, state.schemas, statement.name, Declared(statement, file), "schema")
            elif isinstance(statement, ast.LimitDecl):
                _declare(state, state.limits, statement.name, statement, "limit")
            elif isinstance(statement, ast.BanDecl):
                _declare(state, state.bans, statement.name, statement, "ban")
            elif isinstance(statement, ast.AuthnBlock):
                label = ast.Name(statement.label, (statement.name or statement.kind).span)
                _declare(state, state.authn_blocks, label, Declared(statement, file), "authn block")
        state.routes.extend(_flatten(file, file.statements, "", ()))
    if len(seen_names) > 1:
        first, *others = sorted(
            seen_names.values(), key=lambda p: (p.span.source.name, p.span.start)
        )
        for other in others:
            state.diags.error(
                "compile/policy-name",
                f"the set is named twice: `{first.name}` "
                f"at {first.span.location()} and `{other.name}` here",
                other.span,
            )
    state.policy_name = next(iter(seen_names), None)


_PERMISSIONS = {p.value: p for p in Permission}


def _permit(state: CompileState, statement: ast.Permit) -> None:
    """A `permit` opts the whole set out of one hardening default each; naming one twice
    is harmless, an unknown one an error (a typo must not leave the author believing)."""
    for name in statement.names:
        permission = _PERMISSIONS.get(name.value)
        if permission is None:
            state.diags.error(
                "compile/unknown-permit",
                f"`{name.value}` is not a hardening default that can be permitted",
                name.span,
                f"permit one of {one_of(_PERMISSIONS)}",
            )
            continue
        state.permits.setdefault(permission, statement)


def _declare(state: CompileState, table: dict[str, T], name: ast.Name, value: T, what: str) -> None:
    previous = table.get(name.value)
    if previous is None:
        table[name.value] = value
        return
    node = previous.node if isinstance(previous, Declared) else previous
    where = node.span.location() if hasattr(node, "span") else "elsewhere"
    state.diags.error(
        "compile/duplicate-name",
        f"{what} `{name.value}` is already defined",
        name.span,
        f"first defined at {where}",
    )


def _flatten(
    file: ast.PolicyFile,
    items: tuple[object, ...],
    prefix: str,
    hosts: tuple[ast.HostDecl, ...],
) -> Iterator[FlatRoute]:
    """Routes with their groups' prefixes and `host` declarations (outermost first)."""
    for item in items:
        if isinstance(item, ast.Route):
            yield FlatRoute(item, prefix, file, hosts)
        elif isinstance(item, ast.Group):
            # a malformed prefix is reported by check_group_prefixes; keep its routes usable
            group_prefix = "/" + item.prefix.strip("/") if item.prefix.strip("/") else ""
            declared = tuple(i for i in item.items if isinstance(i, ast.HostDecl))
            yield from _flatten(file, item.items, prefix + group_prefix, hosts + declared[:1])


def check_group_prefixes(state: CompileState) -> None:
    for file in state.policy_set.files:
        for group in _groups(file.statements):
            if not group.prefix.startswith("/") or group.prefix == "/":
                state.diags.error(
                    "compile/bad-group", "a group prefix is a path like `/api`", group.span
                )


def _groups(items: tuple[object, ...]) -> Iterator[ast.Group]:
    for item in items:
        if isinstance(item, ast.Group):
            yield item
            yield from _groups(item.items)


def resolve_role_hierarchy(state: CompileState) -> None:
    """Close the `inherits` relation both ways; a cycle is an error naming its roles."""
    parents: dict[str, tuple[str, ...]] = {}
    for name, decl in state.roles.items():
        for parent in decl.inherits:
            if parent.value not in state.roles:
                _unknown(state, "role", parent.value, parent.span, state.roles)
        parents[name] = tuple(p.value for p in decl.inherits if p.value in state.roles)
    for name in state.roles:
        cycle = _find_cycle(name, parents)
        if cycle and cycle[0] == name and min(cycle) == name:
            state.diags.error(
                "compile/role-cycle",
                f"roles inherit in a cycle: {' -> '.join([*cycle, name])}",
                state.roles[name].span,
            )
    for name in state.roles:
        # interned, as api_key's identities intern theirs: a rule's role-set probe
        # finds an identity's role by pointer, without reading either string
        state.inherited_roles[sys.intern(name)] = frozenset(
            sys.intern(role) for role in _ancestors(name, parents)
        )
    satisfying: dict[str, list[str]] = {name: [] for name in state.roles}
    for other, has in state.inherited_roles.items():  # inverted once: linear, not roles²
        for role in has:
            satisfying[role].append(other)
    for name, others in satisfying.items():
        state.satisfying_roles[name] = frozenset(others)
    state.role_names = frozenset(state.roles)


def _ancestors(role: str, parents: dict[str, tuple[str, ...]]) -> set[str]:
    found = {role}
    stack = [role]
    while stack:
        for parent in parents.get(stack.pop(), ()):
            if parent not in found:
                found.add(parent)
                stack.append(parent)
    return found


def _find_cycle(start: str, parents: dict[str, tuple[str, ...]]) -> list[str] | None:
    """A path start -> ... -> start through `inherits`, if there is one."""
    stack: list[tuple[str, list[str]]] = [(start, [start])]
    visited: set[str] = set()
    while stack:
        role, path = stack.pop()
        for parent in parents.get(role, ()):
            if parent == start:
                return path
            if parent not in visited:
                visited.add(parent)
                stack.append((parent, [*path, parent]))
    return None


def resolve_names(state: CompileState) -> None:
    """Every role, schema, limit and authn block a route or schema names must exist."""
    for flat in state.routes:
        for rule in flat.route.rules:
            _resolve_rule(state, rule)
    for declared in state.schemas.values():
        assert isinstance(declared.node, ast.SchemaDecl)
        if isinstance(declared.node.body, ast.InlineSchema):
            for ref in declared.node.body.schema_refs():
                if ref.value not in state.schemas:
                    _unknown(state, "schema", ref.value, ref.span, state.schemas)


def _resolve_rule(state: CompileState, rule: ast.Rule) -> None:
    if isinstance(rule, ast.AllowRole | ast.AllowAuthenticated):
        _check_scopes(state, rule.scopes)
    if isinstance(rule, ast.AllowRole | ast.Deny):
        for role in rule.roles:
            if role.value not in state.roles:
                _unknown(state, "role", role.value, role.span, state.roles)
    elif isinstance(rule, ast.BodyRule):
        if rule.schema.value not in state.schemas:
            _unknown(state, "schema", rule.schema.value, rule.schema.span, state.schemas)
    elif isinstance(rule, ast.LimitRule):
        for name in rule.names:
            if name.value not in state.limits:
                _unknown(state, "limit", name.value, name.span, state.limits)
    elif isinstance(rule, ast.BanRule):
        for name in rule.names:
            if name.value not in state.bans:
                _unknown(state, "ban", name.value, name.span, state.bans)
    elif isinstance(rule, ast.RequireAuthn):
        for name in rule.names:
            if name.value not in state.authn_blocks:
                _unknown(state, "authn", name.value, name.span, state.authn_blocks)
    elif isinstance(rule, ast.QueryRule):
        for ref in rule.schema.schema_refs():
            if ref.value not in state.schemas:
                _unknown(state, "schema", ref.value, ref.span, state.schemas)


def _check_scopes(state: CompileState, scopes: tuple[ast.Name, ...]) -> None:
    seen: set[str] = set()
    for scope in scopes:
        if not is_scope_token(scope.value):
            state.diags.error(
                "compile/bad-scope",
                f"`{scope.value}` is not a scope",
                scope.span,
                'a scope is printable ASCII without spaces, `"` or `\\` (RFC 6749 §3.3); '
                'list several as `scope "a", "b"`',
            )
        elif scope.value in seen:
            state.diags.error("compile/bad-scope", f"scope `{scope.value}` is listed twice",
                              scope.span)  # fmt: skip
        seen.add(scope.value)


def _unknown(
    state: CompileState, what: str, name: str, span: Span, known: Mapping[str, object]
) -> None:
    noun = {"authn": "authn block"}.get(what, what)
    help_text = f"declared {noun}s are {one_of(known)}" if known else f"no {noun}s are declared"
    state.diags.error(f"compile/unknown-{what}", f"unknown {noun} `{name}`", span, help_text)


def check_route_rules(state: CompileState) -> None:
    """At most one body, query and require per route; an allow rule somewhere."""
    for flat in state.routes:
        counts: dict[type, ast.Rule] = {}
        for rule in flat.route.rules:
            if isinstance(rule, ast.BodyRule | ast.QueryRule | ast.RequireAuthn):
                if type(rule) in counts:
                    state.diags.error(
                        "compile/duplicate-rule",
                        "this rule is given twice",
                        rule.span,
                        f"first at {counts[type(rule)].span.location()}",
                    )
                counts.setdefault(type(rule), rule)
        allows = (ast.AllowAnyone, ast.AllowAuthenticated, ast.AllowRole, ast.AllowWhen)
        if not any(isinstance(r, allows) for r in flat.route.rules):
            state.diags.warning(
                "lint/no-allow",
                "this route allows no one",
                flat.route.header,
                "requests it matches are always denied; add an `allow` rule",
            )
        body = counts.get(ast.BodyRule)
        if body is not None and all(
            t.method in (ast.Method.GET, ast.Method.HEAD) for t in flat.route.targets
        ):
            state.diags.warning(
                "lint/body-on-get", "GET and HEAD requests carry no body", body.span
            )


def parse_paths(state: CompileState) -> None:
    for flat in state.routes:
        for target in flat.route.targets:
            text = _join_prefix(flat.prefix, target.path)
            try:
                state.patterns[target] = parse_pattern(text, normalize_path)
            except PatternError as err:
                offset = max(0, err.offset - len(flat.prefix))
                span = _sub_span(target.path_span, offset, err.length)
                state.diags.error("compile/bad-path", str(err), span, err.help)


def _join_prefix(prefix: str, path: str) -> str:
    """`group "/api" { route GET / }` is `/api`, not `/api/`."""
    return prefix if prefix and path == "/" else prefix + path


def _sub_span(span: Span, offset: int, length: int) -> Span:
    start = min(span.start + offset, span.end)
    return Span(span.source, start, min(start + max(length, 1), span.end) or start + 1)


def detect_conflicts(state: CompileState) -> None:
    """Two routes with the same shape and an overlapping method would tie: an error."""
    seen: dict[tuple[object, ...], ast.RouteTarget] = {}
    for target, pattern in state.patterns.items():
        methods = (
            list(ast.Method) if target.method is ast.Method.ANY else [target.method, ast.Method.ANY]
        )
        for method in methods:
            other = seen.get((pattern.shape, method))
            if other is not None:
                state.diags.error(
                    "compile/route-conflict",
                    f"`{target.method.value} {pattern.text}` matches the same requests as "
                    f"`{other.method.value} {state.patterns[other].text}` at "
                    f"{other.span.location()}",
                    target.span,
                    "give one a more specific path or method, or merge them",
                )
                break
        seen[(pattern.shape, target.method)] = target
