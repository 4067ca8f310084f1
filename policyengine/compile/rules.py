"""Routes to compiled routes: rules with role sets folded in and conditions as closures."""

from __future__ import annotations

from policyengine import ast
from policyengine.authenticator import Authenticator
from policyengine.compile.hosts import route_hosts
from policyengine.compile.state import CompiledTarget, CompileState, FlatRoute
from policyengine.errors import Diagnostics
from policyengine.expr import ExprCompiler, ExprEnv
from policyengine.patterns import PathPattern
from policyengine.ratelimit.bans import BanPlan, ban_plan_of
from policyengine.ratelimit.plan import plan_of
from policyengine.schema import DEFAULT_MAX_BODY, compile_query_schema
from policyengine.tree import (
    AllowKind,
    AllowRule,
    CompiledRoute,
    Condition,
    DenyRule,
    InputSpec,
)


def compile_routes(state: CompileState) -> None:
    """One CompiledRoute per target; expressions are checked once per route."""
    for flat in state.routes:
        targets = [t for t in flat.route.targets if t in state.patterns]
        for index, target in enumerate(targets):
            # report expression errors once, against the first target
            diags = state.diags if index == 0 else Diagnostics()
            route = _compile_target(state, flat, target, targets, diags)
            state.compiled_routes.append((flat, route))
            state.compiled_targets.append(
                CompiledTarget(flat, target, state.patterns[target], route)
            )


def _compile_target(
    state: CompileState,
    flat: FlatRoute,
    target: ast.RouteTarget,
    targets: list[ast.RouteTarget],
    diags: Diagnostics,
) -> CompiledRoute:
    pattern = state.patterns[target]
    query = _query_spec(state, flat, diags)
    env = _expr_env(state, pattern, target, targets, query)
    compiler = ExprCompiler(env, diags)
    allows: list[AllowRule] = []
    denies: list[DenyRule] = []
    for rule in flat.route.rules:
        site = rule.span.short()
        text = rule.span.source.text[rule.span.start : rule.span.end]
        if isinstance(rule, ast.AllowAnyone):
            allows.append(AllowRule(AllowKind.ANYONE, None, None, site, text))
        elif isinstance(rule, ast.AllowAuthenticated | ast.AllowRole):
            scopes, scope_text = _scopes(state, rule.scopes)
            allows.append(
                AllowRule(
                    kind=AllowKind.ROLE
                    if isinstance(rule, ast.AllowRole)
                    else AllowKind.AUTHENTICATED,
                    roles=_satisfying(state, rule.roles)
                    if isinstance(rule, ast.AllowRole)
                    else None,
                    condition=_condition(compiler, rule.when),
                    site=site,
                    text=text,
                    scopes=scopes,
                    scope_text=scope_text,
                )
            )
        elif isinstance(rule, ast.AllowWhen):
            allows.append(
                AllowRule(AllowKind.WHEN, None, compiler.condition(rule.when), site, text)
            )
        elif isinstance(rule, ast.Deny):
            roles = _satisfying(state, rule.roles) if rule.roles else None
            denies.append(DenyRule(roles, _condition(compiler, rule.when), site, text))
    body = _body_spec(state, flat)
    specs = tuple(
        state.compiled_limits[name.value]
        for rule in flat.route.rules
        if isinstance(rule, ast.LimitRule)
        for name in rule.names
        if name.value in state.compiled_limits
    )
    return CompiledRoute(
        label=f"{target.method.value} {pattern.text}",
        allows=tuple(allows),
        denies=tuple(denies),
        authenticators=_authenticators(state, flat),
        needs_identity=all(a.needs_identity for a in allows),
        plain=not specs and body is None and query is None,
        site=flat.route.span.short(),
        param_names=pattern.param_names,
        body=body,
        query=query,
        limits=plan_of(specs) if specs else None,
        hosts=route_hosts(state, flat),
        bans=_bans(state, flat),
    )


def _bans(state: CompileState, flat: FlatRoute) -> BanPlan | None:
    specs = tuple(
        state.compiled_bans[name.value]
        for rule in flat.route.rules
        if isinstance(rule, ast.BanRule)
        for name in rule.names
        if name.value in state.compiled_bans
    )
    return ban_plan_of(specs) if specs else None


def _expr_env(
    state: CompileState,
    pattern: PathPattern,
    target: ast.RouteTarget,
    targets: list[ast.RouteTarget],
    query: InputSpec | None,
) -> ExprEnv:
    params = {name: (i, pattern.param_type(name)) for i, name in enumerate(pattern.param_names)}
    missing: dict[str, str] = {}
    for other in targets:
        other_pattern = state.patterns[other]
        for name in params:
            if name not in other_pattern.param_names:
                missing.setdefault(name, f"{other.method.value} {other_pattern.text}")
    query_fields = None
    if query is not None and not query.open_fields:
        query_fields = frozenset(query.fields)
    return ExprEnv(
        params,
        state.role_names,
        state.inherited_roles,
        query_fields,
        f"{target.method.value} {pattern.text}",
        missing,
    )


def _condition(compiler: ExprCompiler, expr: ast.Expr | None) -> Condition | None:
    return compiler.condition(expr) if expr is not None else None


def _satisfying(state: CompileState, roles: tuple[ast.Name, ...]) -> frozenset[str]:
    """Every role that satisfies one of `roles`; equal sets are one shared object, so the
    thousands of routes of a large policy keep few of them (and few cache lines) alive."""
    found: set[str] = set()
    for role in roles:
        found |= state.satisfying_roles.get(role.value, frozenset())
    role_set = frozenset(found)
    return state.role_sets.setdefault(role_set, role_set)


def _scopes(state: CompileState, names: tuple[ast.Name, ...]) -> tuple[frozenset[str] | None, str]:
    """The scopes a rule needs as a shared frozenset (None: no scope clause), and how the
    RFC 6750 challenge lists them: as written, space-separated, once each."""
    if not names:
        return None, ""
    ordered = list(dict.fromkeys(n.value for n in names))
    scope_set = frozenset(ordered)
    return state.scope_sets.setdefault(scope_set, scope_set), " ".join(ordered)


def _authenticators(state: CompileState, flat: FlatRoute) -> tuple[Authenticator, ...]:
    required = next((r for r in flat.route.rules if isinstance(r, ast.RequireAuthn)), None)
    names = [n.value for n in required.names] if required else list(state.authn_blocks)
    chosen = tuple(state.authenticators[n] for n in names if n in state.authenticators)
    return state.authn_sets.setdefault(chosen, chosen)  # shared, like role sets


def _body_spec(state: CompileState, flat: FlatRoute) -> InputSpec | None:
    rule = next((r for r in flat.route.rules if isinstance(r, ast.BodyRule)), None)
    if rule is None:
        return None
    schema = state.compiled_schemas.get(rule.schema.value)
    if schema is None:
        return None
    return InputSpec(
        schema.name,
        rule.max_bytes or DEFAULT_MAX_BODY,
        schema.validate,
        tuple(schema.fields),
        schema.open_fields,
    )


def _query_spec(state: CompileState, flat: FlatRoute, diags: Diagnostics) -> InputSpec | None:
    rule = next((r for r in flat.route.rules if isinstance(r, ast.QueryRule)), None)
    if rule is None:
        return None
    return compile_query_schema(rule, diags)
