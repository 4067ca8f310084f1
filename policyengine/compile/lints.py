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
  (contradictions.py says exactly what is recognized), or a scope rule on a route that
  only API keys (which carry no scopes) authenticate.
- `lint/unused-role`, `lint/unused-schema`, `lint/unused-limit`, `lint/unused-authn`: a
  declaration no route uses. A role counts as used when a rule admits or names it,
  directly or by inheritance (a role that inherits a used role is used), or when another
  role inherits it (a base role of a hierarchy the author is building).
- `lint/spoofable-header`: a condition or a limit key that reads a header the client can
  set to anything and that stands for something the engine establishes itself
  (`X-Forwarded-For` for `client_ip`, `X-Auth-Subject` for `subject`...).
- `lint/unchecked-input`: a condition reads `query.NAME` on a route without a `query`
  rule (a repeated parameter is read as its first value, while backends differ), or a
  deny reads `body.x` on a route without a `body` schema (a body that is not strict JSON
  reads as null, so the deny does not apply while a lenient backend acts on the body).
"""

from __future__ import annotations

from policyengine import ast
from policyengine.authn import Authenticator
from policyengine.authn.api_key import ApiKeyAuthenticator
from policyengine.compile.contradictions import Facts, condition_of, never_true, ref_key, walk
from policyengine.compile.reachability import lint_public_in_protected, lint_shadowed_routes
from policyengine.compile.state import CompileState
from policyengine.source import Span
from policyengine.tree import CompiledRoute

__all__ = [
    "lint_public_in_protected",
    "lint_request_data",
    "lint_shadowed_routes",
    "lint_unsatisfiable_rules",
    "lint_unused_declarations",
]

SPOOFABLE_HEADERS = {
    "x-forwarded-for": "client_ip",
    "x-real-ip": "client_ip",
    "forwarded": "client_ip",
    "x-client-ip": "client_ip",
    "true-client-ip": "client_ip",
    "x-auth-subject": "subject",
    "x-auth-roles": "roles",
    "x-forwarded-host": 'host "..."',  # the engine reads it only from a trusted hop
    "x-forwarded-server": 'host "..."',
}


# -- rules that can never match --------------------------------------------------------------


def lint_unsatisfiable_rules(state: CompileState) -> None:
    first_route: dict[int, CompiledRoute] = {}  # id(ast.Route) -> its first target's
    for compiled_flat, compiled in state.compiled_routes:
        first_route.setdefault(id(compiled_flat.route), compiled)
    key_claims = _ApiKeyClaims()
    for flat in state.routes:
        for rule in flat.route.rules:
            _lint_scopes_without_tokens(state, rule, first_route.get(id(flat.route)))
            condition = condition_of(rule)
            if condition is None:
                continue
            facts = _facts(state, rule, condition, key_claims.of(first_route.get(id(flat.route))))
            reason = never_true(condition, facts)
            if reason is not None:
                kind = "deny" if isinstance(rule, ast.Deny) else "allow"
                state.diags.warning(
                    "lint/unsatisfiable-rule",
                    f"this {kind} rule can never match: {reason}",
                    rule.span,
                    "no request" + (" is denied by it" if kind == "deny" else " is admitted by it"),
                )


def _lint_scopes_without_tokens(
    state: CompileState, rule: ast.Rule, route: CompiledRoute | None
) -> None:
    """Only tokens carry scopes: a scope rule on a route no token block serves admits no one."""
    if not isinstance(rule, ast.AllowAuthenticated | ast.AllowRole) or not rule.scopes:
        return
    if route is None or any(not isinstance(a, ApiKeyAuthenticator) for a in route.authenticators):
        return
    state.diags.warning(
        "lint/unsatisfiable-rule",
        "this allow rule can never match: no authn block of this route reads scopes",
        rule.span,
        "scopes come from `authn jwt` and `authn introspect` tokens; API keys carry none",
    )


def _facts(
    state: CompileState, rule: ast.Rule, condition: ast.Expr, key_claims: frozenset[str] | None
) -> Facts:
    guaranteed: frozenset[str] = frozenset()
    if isinstance(rule, ast.AllowRole | ast.Deny) and rule.roles:
        admitted = {s for r in rule.roles for s in state.satisfying_roles.get(r.value, ())}
        held = [state.inherited_roles.get(role, frozenset()) for role in admitted]
        guaranteed = frozenset.intersection(*held) if held else frozenset()
    if key_claims is None:
        return Facts(guaranteed)
    always_null = frozenset(
        ref_key(ref)
        for ref in walk(condition)
        if isinstance(ref, ast.Ref)
        and ref.root.value == "claims"
        and ref.parts
        and ref.parts[0].key not in key_claims
    )
    why = "this route authenticates only with API keys, and no key carries that claim"
    return Facts(guaranteed, always_null, why)


class _ApiKeyClaims:
    """The claim names some API key carries, when API keys are a route's only authn; None
    when claims could come from anywhere else (tokens). Worked out once per set of blocks."""

    def __init__(self) -> None:
        self._known: dict[tuple[int, ...], frozenset[str] | None] = {}

    def of(self, route: CompiledRoute | None) -> frozenset[str] | None:
        if route is None or not route.authenticators:
            return None
        blocks = tuple(id(a) for a in route.authenticators)
        if blocks not in self._known:
            self._known[blocks] = _claim_names(route.authenticators)
        return self._known[blocks]


def _claim_names(authenticators: tuple[Authenticator, ...]) -> frozenset[str] | None:
    names: set[str] = set()
    for authenticator in authenticators:
        if not isinstance(authenticator, ApiKeyAuthenticator):
            return None
        for identity in authenticator.identities.values():
            names.update(identity.claims)
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
    used_bans = {n.value for r in rules if isinstance(r, ast.BanRule) for n in r.names}
    for name, ban in state.bans.items():
        if name not in used_bans:
            _unused(state, "ban", ban.name, "no route applies it; add `ban` to a route")
    _unused_authn(state)


def _unused(state: CompileState, what: str, name: ast.Name, help_text: str) -> None:
    state.diags.warning(
        f"lint/unused-{what}", f"{what} `{name.value}` is never used", name.span, help_text
    )


def _unused_roles(state: CompileState, rules: list[ast.Rule]) -> None:
    named = {n.value for r in rules if isinstance(r, ast.AllowRole | ast.Deny) for n in r.roles}
    for rule in rules:
        condition = condition_of(rule)
        if condition is not None and not _role_names(condition, named):
            return  # `roles` used in other ways than `"r" in roles`: any role may matter
    used = {s for name in named for s in state.satisfying_roles.get(name, ())}
    used.update(parent.value for decl in state.roles.values() for parent in decl.inherits)
    for name, decl in state.roles.items():
        if name not in used:
            _unused(
                state,
                "role",
                decl.name,
                "no rule admits it, directly or through `inherits`, and no role inherits "
                "it, so holding it grants nothing; use it in `allow role` or remove it",
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
    pending += [
        n.value for r in rules if isinstance(r, ast.QueryRule) for n in r.schema.schema_refs()
    ]
    used: set[str] = set()
    while pending:
        name = pending.pop()
        declared = state.schemas.get(name)
        if name in used or declared is None:
            continue
        used.add(name)
        assert isinstance(declared.node, ast.SchemaDecl)
        if isinstance(declared.node.body, ast.InlineSchema):
            pending.extend(n.value for n in declared.node.body.schema_refs())
    for name, declared in state.schemas.items():
        assert isinstance(declared.node, ast.SchemaDecl)
        if name not in used:
            _unused(state, "schema", declared.node.name, "no `body` or `query` rule uses it")


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


# -- request data a rule should not trust as it is ------------------------------------------------


def lint_request_data(state: CompileState) -> None:
    """Spoofable headers, and query or body values read on a route that does not check them."""
    for flat in state.routes:
        declared = {type(r) for r in flat.route.rules}
        for rule in flat.route.rules:
            condition = condition_of(rule)
            for expr in walk(condition) if condition is not None else ():
                if not isinstance(expr, ast.Ref) or not expr.parts:
                    continue
                if expr.root.value == "header":
                    _check_header(state, expr.parts[0].key, expr.span)
                elif expr.root.value == "query" and ast.QueryRule not in declared:
                    _unchecked(state, expr, _QUERY_HELP)
                elif (
                    expr.root.value == "body"
                    and isinstance(rule, ast.Deny)
                    and ast.BodyRule not in declared
                ):
                    _unchecked(state, expr, _BODY_HELP)
    for decl in state.counted():
        for key in decl.by:
            if key.kind is ast.LimitKeyKind.HEADER and key.arg is not None:
                _check_header(state, key.arg, key.span)


_QUERY_HELP = (
    "declare it in a `query { ... }` rule: a parameter given twice (`?a=1&a=2`) is then "
    "refused, instead of this rule reading the first value while the backend may read the last"
)
_BODY_HELP = (
    "declare a `body` schema: a body that is not strict JSON (a duplicate key, a trailing "
    "comma) is then refused, instead of reading as null here while a lenient backend reads it"
)


def _unchecked(state: CompileState, ref: ast.Ref, help_text: str) -> None:
    state.diags.warning(
        "lint/unchecked-input",
        f"`{ref.dotted}` is read on a route that does not validate its {ref.root.value}",
        ref.span,
        help_text,
    )


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
