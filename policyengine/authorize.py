"""Step 4 of a decision: a matched route's deny and allow rules against the identity.

A deny rule that matches refuses (403); else the first allow rule that matches lets the
request through; else the refusal says what was missing (401 credentials, 403 a scope,
403 no rule).
"""

from __future__ import annotations

from typing import Final

from policyengine.answers import deny
from policyengine.authenticator import with_params
from policyengine.context import RequestContext
from policyengine.decision import Decision
from policyengine.request import Identity, Reason
from policyengine.trace import Trace
from policyengine.tree import AllowKind, AllowRule, CompiledRoute

# C statics compiled: enum members read without looking up the class and the member
_ANYONE: Final = AllowKind.ANYONE
_WHEN: Final = AllowKind.WHEN
_NO_ALLOW: Final = Reason.NO_ALLOW
_AUTHN_MISSING: Final = Reason.AUTHN_MISSING


def check_rules(
    policy: str | None, ctx: RequestContext, route: CompiledRoute, trace: Trace | None
) -> Decision | str:
    """A deny decision, or the site of the allow rule that let the request through."""
    identity = ctx.identity
    if identity is None and route.needs_identity:
        if trace is not None:
            trace.add("authn: every allow rule needs an identity")
        return _credentials_required(policy, route, ctx)
    for denial in route.denies:
        if denial.roles is not None and (
            identity is None or denial.roles.isdisjoint(identity.roles)
        ):
            if trace is not None:
                trace.add(f"deny {denial.site}: role does not apply ({denial.text})")
            continue
        if denial.condition is None or denial.condition(ctx):
            if trace is not None:
                trace.add(f"deny {denial.site}: matched ({denial.text})")
            return deny(
                policy,
                403,
                Reason.DENIED,
                f"denied by the rule at {denial.site}",
                route,
                ctx,
                rule=denial.site,
                reusable=True,
            )
        if trace is not None:
            trace.add(f"deny {denial.site}: condition false ({denial.text})")
    lacking: AllowRule | None = None  # the first rule that only a scope kept shut
    for allow in route.allows:
        kind = allow.kind
        if kind is not _ANYONE and kind is not _WHEN and identity is None:
            why_not = "needs an identity"
        elif allow.roles is not None and (
            identity is None or not _holds_one_of(identity, allow.roles)
        ):
            why_not = "role does not match"
        elif allow.scopes is not None and (identity is None or not allow.scopes <= identity.scopes):
            why_not = "scope missing"
            if lacking is None:
                lacking = allow
        elif allow.condition is not None and not allow.condition(ctx):
            why_not = "condition false"
        else:
            if trace is not None:
                trace.add(f"allow {allow.site}: matched ({allow.text})")
            return allow.site
        if trace is not None:
            trace.add(f"allow {allow.site}: {why_not} ({allow.text})")
    if identity is None:
        return _credentials_required(policy, route, ctx)
    if lacking is not None:
        return _insufficient_scope(policy, ctx, route, identity, lacking)
    roles = identity.role_list
    who = f"role {', '.join(roles)}" if roles else f"`{identity.subject}`"
    return deny(policy, 403, _NO_ALLOW, f"{who} may not {route.label}", route, ctx, reusable=True)


def _insufficient_scope(
    policy: str | None,
    ctx: RequestContext,
    route: CompiledRoute,
    identity: Identity,
    rule: AllowRule,
) -> Decision:
    """403 with the RFC 6750 §3.1 challenge naming the scopes the rule needs."""
    # the realm of the bearer block that made the identity, when it made one
    prefix = next(
        (c for a in route.authenticators
         if a.name == identity.authn and (c := a.challenge()) and c.startswith("Bearer ")),
        "Bearer",
    )  # fmt: skip
    challenge = with_params(prefix, error="insufficient_scope", scope=rule.scope_text)
    return deny(policy, 403, Reason.INSUFFICIENT_SCOPE,
                      f"insufficient scope: needs `{rule.scope_text}`", route, ctx,
                      response_headers={"WWW-Authenticate": challenge},
                      reusable=True)  # fmt: skip


def _credentials_required(
    policy: str | None, route: CompiledRoute, ctx: RequestContext
) -> Decision:
    challenge = next((c for a in route.authenticators if (c := a.challenge())), None)
    headers = {"WWW-Authenticate": challenge} if challenge else {}
    return deny(policy, 401, _AUTHN_MISSING, "credentials required", route, ctx,
                      response_headers=headers, reusable=True)  # fmt: skip


def _holds_one_of(identity: Identity, role_set: frozenset[str]) -> bool:
    """Whether the identity holds a role of `role_set`. Probed with its role_list, which
    the decision reads anyway, rather than its frozenset: one object less to pull into
    cache (unless it holds more roles than the set has: then the set is the shorter walk)."""
    role_list = identity.role_list
    if len(role_list) > len(role_set):
        return not role_set.isdisjoint(identity.roles)
    return any(role in role_set for role in role_list)
