"""Lint passes: policies that compile but do not do what their author meant.

Each reports warnings (`lint/...`) with a span and help; `policyengine check --strict`
fails on them. Definitions, precisely (SECURITY.md lists them for policy authors):

- `lint/shadowed-route`: a route target that no request reaches. For every method and
  path it matches, precedence (static > typed > param > `*` > `**`, segment by segment,
  then the method) hands the request to another route. Checked by asking the real
  decision tree about witness requests: each segment of the target filled with a value
  that matches as few other routes as possible (its static text; for `{x}` and `*` a
  value no static, typed or other segment takes; for `{x:int}` an integer no static
  segment spells), `**` filled with 0 up to the deepest route's length of such
  segments, and the method itself (a GET route is also asked about HEAD; an ANY route
  about a method no route names). If the target wins none of them, it wins no request.
- `lint/public-in-protected`: an `allow anyone` route inside an area every other route
  keeps to named roles: either the route that would take its requests without it
  admits only roles (`ANY /admin/** { allow role admin }` plus a public
  `GET /admin/health`), or at least two other routes at the same depth under the same
  static parent all admit only roles.
- `lint/unsatisfiable-rule`: an allow or deny condition that no request can make true
  (contradictions.py says exactly what is recognized).
- `lint/unused-role`, `lint/unused-schema`, `lint/unused-limit`, `lint/unused-authn`: a
  declaration no route uses. A role counts as used when a rule admits or names it,
  directly or by inheritance (a role that inherits a used role is used).
- `lint/spoofable-header`: a condition or a limit key that reads a header the client can
  set to anything and that stands for something the engine establishes itself
  (`X-Forwarded-For` for `client_ip`, `X-Auth-Subject` for `subject`...).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from policyengine import ast
from policyengine.authn.api_key import ApiKeyAuthenticator
from policyengine.compile.contradictions import Facts, never_true, ref_key, walk
from policyengine.compile.state import CompileState, FlatRoute
from policyengine.compile.tree import build_tree
from policyengine.errors import one_of
from policyengine.patterns import ParamType, PathPattern, SegmentKind
from policyengine.source import Span
from policyengine.tree import AllowKind, CompiledRoute, DecisionTree, Endpoint, Node

# A method no route can name: an ANY route is asked about it (it meets only ANY routes).
UNNAMED_METHOD = "PROPFIND"
SPOOFABLE_HEADERS = {
    "x-forwarded-for": "client_ip",
    "x-real-ip": "client_ip",
    "forwarded": "client_ip",
    "x-client-ip": "client_ip",
    "true-client-ip": "client_ip",
    "x-auth-subject": "subject",
    "x-auth-roles": "roles",
}
Request = tuple[str, tuple[str, ...]]  # method, normalized segments


@dataclass(frozen=True, slots=True)
class _Target:
    flat: FlatRoute
    target: ast.RouteTarget
    pattern: PathPattern
    route: CompiledRoute


def _targets(state: CompileState) -> list[_Target]:
    found = []
    for flat, route in state.compiled_routes:
        for target in flat.route.targets:
            pattern = state.patterns.get(target)
            if pattern is not None and f"{target.method.value} {pattern.text}" == route.label:
                found.append(_Target(flat, target, pattern, route))
                break
    return found


# -- shadowed routes and public holes ------------------------------------------------------


class _Witnesses:
    """Requests that each route target matches, chosen to meet as few other routes as can be."""

    def __init__(self, targets: list[_Target]) -> None:
        statics = {s.text for t in targets for s in t.pattern.segments if s.text}
        self.text = _fresh("lint-{}", statics)
        self.values = {
            SegmentKind.PARAM: self.text,
            SegmentKind.STAR: self.text,
        }
        self.typed = {
            ParamType.INT: _fresh("7{}", statics),
            ParamType.UUID: _fresh("00000000-0000-4000-8000-{:012d}", statics),
        }
        self.depth = max((len(t.pattern.segments) for t in targets), default=0) + 1

    def requests(self, target: _Target) -> Iterator[Request]:
        path: list[str] = []
        globbed = False
        for segment in target.pattern.segments:
            if segment.kind is SegmentKind.GLOB:
                globbed = True
            elif segment.kind is SegmentKind.STATIC:
                path.append(segment.text)
            elif segment.kind is SegmentKind.TYPED:
                assert segment.type is not None
                path.append(self.typed[segment.type])
            else:
                path.append(self.values[segment.kind])
        extra = range(self.depth - len(path) + 1) if globbed else range(1)
        for method in _methods(target.target.method):
            for count in extra:
                yield method, (*path, *(self.text,) * count)


def _fresh(template: str, taken: set[str]) -> str:
    return next(v for n in range(len(taken) + 1) if (v := template.format(n)) not in taken)


def _methods(method: ast.Method) -> tuple[str, ...]:
    if method is ast.Method.ANY:
        return (UNNAMED_METHOD,)
    if method is ast.Method.GET:
        return ("GET", "HEAD")  # HEAD falls back to GET routes
    return (method.value,)


def _winner(tree: DecisionTree, request: Request) -> CompiledRoute | None:
    method, segments = request
    match = tree.match(segments, method)
    return match[0] if match is not None else None


def lint_shadowed_routes(state: CompileState) -> None:
    if state.diags.errors:
        return  # conflicting or broken routes: the errors say more than any lint
    targets = _targets(state)
    tree = build_tree(state)
    witnesses = _Witnesses(targets)
    for target in targets:
        winners = [_winner(tree, request) for request in witnesses.requests(target)]
        if any(w is target.route for w in winners):
            continue
        others = sorted({w.label for w in winners if w is not None})
        state.diags.warning(
            "lint/shadowed-route",
            f"`{target.route.label}` can never be reached: every request it matches "
            f"goes to {one_of(others)}",
            target.target.span,
            "precedence is static > typed > param > `*` > `**`, segment by segment from "
            "the left, then the method; remove this route or give it a path of its own",
        )


def lint_public_in_protected(state: CompileState) -> None:
    if state.diags.errors:
        return
    targets = _targets(state)
    tree = build_tree(state)
    witnesses = _Witnesses(targets)
    warned: set[int] = set()  # ids of rules already reported
    for target in targets:
        rule = next((r for r in target.flat.route.rules if isinstance(r, ast.AllowAnyone)), None)
        if rule is None or id(rule) in warned:
            continue
        protector = _carved_from(tree, target, witnesses) or _protected_siblings(target, targets)
        if protector is not None:
            warned.add(id(rule))
            state.diags.warning(
                "lint/public-in-protected",
                f"`allow anyone` on `{target.route.label}`, where {protector}",
                rule.span,
                "make sure this path is meant to be public, or move it out from under a "
                "prefix that is otherwise kept to roles",
            )


def _role_only(route: CompiledRoute) -> bool:
    return bool(route.allows) and all(a.kind is AllowKind.ROLE for a in route.allows)


def _roles_of(route: CompiledRoute) -> str:
    roles = {r for a in route.allows for r in (a.roles or ())}
    return one_of(roles)


def _carved_from(tree: DecisionTree, target: _Target, witnesses: _Witnesses) -> str | None:
    """The role-only route that would take this route's requests if it were not there."""
    requests = [r for r in witnesses.requests(target) if _winner(tree, r) is target.route]
    endpoint = _endpoint_of(tree.root, target.pattern)
    method = target.target.method.value
    with _detached(endpoint, method):
        for request in requests:
            fallback = _winner(tree, request)
            if fallback is not None and _role_only(fallback):
                return f"`{fallback.label}` admits only roles {_roles_of(fallback)}"
    return None


class _detached:
    """Take one route out of its endpoint for the duration of a `with` block."""

    def __init__(self, endpoint: Endpoint, method: str) -> None:
        self.endpoint = endpoint
        self.method = method
        self.route: CompiledRoute | None = None

    def __enter__(self) -> None:
        if self.method == "ANY":
            self.route, self.endpoint.any = self.endpoint.any, None
        else:
            self.route = self.endpoint.by_method.pop(self.method)

    def __exit__(self, *_: object) -> None:
        if self.method == "ANY":
            self.endpoint.any = self.route
        elif self.route is not None:
            self.endpoint.by_method[self.method] = self.route


def _endpoint_of(root: Node, pattern: PathPattern) -> Endpoint:
    node = root
    for segment in pattern.segments:
        if segment.kind is SegmentKind.GLOB:
            assert node.glob is not None
            return node.glob
        if segment.kind is SegmentKind.STATIC:
            node = node.static[segment.text]
        elif segment.kind is SegmentKind.TYPED:
            node = next(child for kind, child in node.typed if kind is segment.type)
        else:
            child = node.param if segment.kind is SegmentKind.PARAM else node.star
            assert child is not None
            node = child
    assert node.leaf is not None
    return node.leaf


def _protected_siblings(target: _Target, targets: list[_Target]) -> str | None:
    """At least two routes beside this one under its static parent, all kept to roles."""
    segments = target.pattern.segments
    parent = segments[:-1]
    if not parent or any(s.kind is not SegmentKind.STATIC for s in parent):
        return None
    siblings = [
        t.route
        for t in targets
        if t.route is not target.route
        and len(t.pattern.segments) == len(segments)
        and t.pattern.segments[:-1] == parent
    ]
    if len(siblings) < 2 or not all(_role_only(s) for s in siblings):
        return None
    prefix = "/" + "/".join(s.text for s in parent)
    return f"every other route under `{prefix}/` admits only named roles"


# -- rules that can never match --------------------------------------------------------------


def lint_unsatisfiable_rules(state: CompileState) -> None:
    first_route: dict[int, CompiledRoute] = {}  # id(ast.Route) -> its first target's
    for compiled_flat, compiled in state.compiled_routes:
        first_route.setdefault(id(compiled_flat.route), compiled)
    for flat in state.routes:
        null_claims = _claims_no_key_has(first_route.get(id(flat.route)))
        for rule in flat.route.rules:
            condition = _condition_of(rule)
            if condition is None:
                continue
            facts = _facts(state, rule, condition, null_claims)
            reason = never_true(condition, facts)
            if reason is not None:
                kind = "deny" if isinstance(rule, ast.Deny) else "allow"
                state.diags.warning(
                    "lint/unsatisfiable-rule",
                    f"this {kind} rule can never match: {reason}",
                    rule.span,
                    "no request" + (" is denied by it" if kind == "deny" else " is admitted by it"),
                )


def _condition_of(rule: ast.Rule) -> ast.Expr | None:
    if isinstance(rule, ast.AllowAuthenticated | ast.AllowRole | ast.Deny):
        return rule.when
    if isinstance(rule, ast.AllowWhen):
        return rule.when
    return None


def _facts(
    state: CompileState, rule: ast.Rule, condition: ast.Expr, null_claims: frozenset[str] | None
) -> Facts:
    guaranteed: frozenset[str] = frozenset()
    if isinstance(rule, ast.AllowRole | ast.Deny) and rule.roles:
        admitted = {s for r in rule.roles for s in state.satisfying_roles.get(r.value, ())}
        held = [state.inherited_roles.get(role, frozenset()) for role in admitted]
        guaranteed = frozenset.intersection(*held) if held else frozenset()
    if null_claims is None:
        return Facts(guaranteed)
    always_null = frozenset(
        ref_key(ref)
        for ref in walk(condition)
        if isinstance(ref, ast.Ref)
        and ref.root.value == "claims"
        and ref.parts
        and ref.parts[0].key not in null_claims
    )
    why = "this route authenticates only with API keys, and no key carries that claim"
    return Facts(guaranteed, always_null, why)


def _claims_no_key_has(route: CompiledRoute | None) -> frozenset[str] | None:
    """The claim names some API key carries, when API keys are the route's only authn;
    None when claims could come from anywhere else (tokens)."""
    if route is None or not route.authenticators:
        return None
    names: set[str] = set()
    for authenticator in route.authenticators:
        if not isinstance(authenticator, ApiKeyAuthenticator):
            return None
        for entry in authenticator.keys.values():
            names.update(entry.identity.claims)
    return frozenset(names)


# -- declarations nothing uses ------------------------------------------------------------------


def lint_unused_declarations(state: CompileState) -> None:
    rules = [rule for flat in state.routes for rule in flat.route.rules]
    _unused_roles(state, rules)
    _unused_schemas(state, rules)
    used_limits = {n.value for r in rules if isinstance(r, ast.LimitRule) for n in r.names}
    for name, decl in state.limits.items():
        if name not in used_limits:
            _unused(state, "limit", decl.name, "no route applies it; add `limit` to a route")
    _unused_authn(state)


def _unused(state: CompileState, what: str, name: ast.Name, help_text: str) -> None:
    state.diags.warning(
        f"lint/unused-{what}", f"{what} `{name.value}` is never used", name.span, help_text
    )


def _unused_roles(state: CompileState, rules: list[ast.Rule]) -> None:
    named = {n.value for r in rules if isinstance(r, ast.AllowRole | ast.Deny) for n in r.roles}
    for rule in rules:
        condition = _condition_of(rule)
        if condition is not None and not _role_names(condition, named):
            return  # `roles` used in other ways than `"r" in roles`: any role may matter
    used = {s for name in named for s in state.satisfying_roles.get(name, ())}
    for name, decl in state.roles.items():
        if name not in used:
            _unused(
                state,
                "role",
                decl.name,
                "no rule admits it, directly or through `inherits`, so holding it grants "
                "nothing; use it in `allow role` or remove it",
            )


def _role_names(expr: ast.Expr, named: set[str]) -> bool:
    """Add the roles that `"r" in roles` tests name; False when `roles` appears otherwise."""
    if (
        isinstance(expr, ast.Compare)
        and expr.op in (ast.CompareOp.IN, ast.CompareOp.NOT_IN)
        and isinstance(expr.left, ast.Literal)
        and expr.left.kind is ast.LiteralKind.STRING
        and isinstance(expr.right, ast.Ref)
        and expr.right.root.value == "roles"
    ):
        named.add(str(expr.left.value))
        return True
    if isinstance(expr, ast.Ref):
        return expr.root.value != "roles"
    children: tuple[ast.Expr, ...] = ()
    if isinstance(expr, ast.Compare):
        children = (expr.left, expr.right)
    elif isinstance(expr, ast.Not):
        children = (expr.operand,)
    elif isinstance(expr, ast.BoolOp):
        children = expr.operands
    elif isinstance(expr, ast.ListExpr):
        children = expr.items
    return all([_role_names(child, named) for child in children])


def _unused_schemas(state: CompileState, rules: list[ast.Rule]) -> None:
    pending = [r.schema.value for r in rules if isinstance(r, ast.BodyRule)]
    pending += [n.value for r in rules if isinstance(r, ast.QueryRule) for n in _refs(r.schema)]
    used: set[str] = set()
    while pending:
        name = pending.pop()
        declared = state.schemas.get(name)
        if name in used or declared is None:
            continue
        used.add(name)
        assert isinstance(declared.node, ast.SchemaDecl)
        if isinstance(declared.node.body, ast.InlineSchema):
            pending.extend(n.value for n in _refs(declared.node.body))
    for name, declared in state.schemas.items():
        assert isinstance(declared.node, ast.SchemaDecl)
        if name not in used:
            _unused(state, "schema", declared.node.name, "no `body` or `query` rule uses it")


def _refs(schema: ast.InlineSchema) -> Iterator[ast.Name]:
    for schema_field in schema.fields:
        kind = schema_field.type
        while isinstance(kind, ast.ArrayType):
            kind = kind.items
        if isinstance(kind, ast.SchemaRef):
            yield kind.name


def _unused_authn(state: CompileState) -> None:
    """Only when every route names its blocks: a route without `require authn` uses all."""
    requires = [
        next((r for r in flat.route.rules if isinstance(r, ast.RequireAuthn)), None)
        for flat in state.routes
    ]
    if not requires or None in requires:
        return
    used = {n.value for r in requires if r is not None for n in r.names}
    for name, declared in state.authn_blocks.items():
        block = declared.node
        assert isinstance(block, ast.AuthnBlock)
        if name not in used:
            label = block.name or block.kind
            _unused(state, "authn", label, "every route names its blocks with `require authn`")


# -- headers the client makes up -----------------------------------------------------------------


def lint_spoofable_headers(state: CompileState) -> None:
    for flat in state.routes:
        for rule in flat.route.rules:
            condition = _condition_of(rule)
            for expr in walk(condition) if condition is not None else ():
                if isinstance(expr, ast.Ref) and expr.root.value == "header" and expr.parts:
                    _check_header(state, expr.parts[0].key, expr.span)
    for decl in state.limits.values():
        for key in decl.by:
            if key.kind is ast.LimitKeyKind.HEADER and key.arg is not None:
                _check_header(state, key.arg, key.span)


def _check_header(state: CompileState, name: str, span: Span) -> None:
    instead = SPOOFABLE_HEADERS.get(name.lower())
    if instead is None:
        return
    state.diags.warning(
        "lint/spoofable-header",
        f"`{name}` is whatever the client sends",
        span,
        f"use `{instead}`, which the engine establishes itself (from the connection, a "
        "trusted proxy or a verified credential)",
    )
