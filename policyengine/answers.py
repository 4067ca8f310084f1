"""How a decision is written down: the Decisions the steps of the engine return, each
built by keyword from the context it was reached in."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from policyengine.context import RequestContext
from policyengine.decision import Decision, new_decision
from policyengine.ratelimit.algorithm import micros, whole_seconds
from policyengine.ratelimit.bans import ban_name
from policyengine.ratelimit.base import LimitOutcome
from policyengine.ratelimit.plan import Metered
from policyengine.request import InputError, Reason
from policyengine.trace import Trace
from policyengine.tree import CompiledRoute

NO_HEADERS: Final[Mapping[str, str]] = MappingProxyType({})
_FOREVER: Final = float("inf")
_ALLOW: Final = Reason.ALLOW  # a C static compiled: no lookup of the enum and its member


def who(ctx: RequestContext | None) -> tuple[str | None, tuple[str, ...]]:
    if ctx is None or ctx.identity is None:
        return None, ()
    return ctx.identity.subject, ctx.identity.role_list


def deny(
    policy: str | None,
    status: int,
    reason: Reason,
    message: str,
    route: CompiledRoute | None = None,
    ctx: RequestContext | None = None,
    *,
    rule: str | None = None,
    response_headers: Mapping[str, str] | None = None,
    reusable: bool = False,
) -> Decision:
    """`reusable`: decided from the method, target and credentials alone (no failure
    that may pass, no counter): as long as the context's identity stays valid."""
    subject, roles = who(ctx)
    reuse = (ctx.reuse_until if ctx is not None else _FOREVER) if reusable else 0.0
    return new_decision(
        allow=False,
        status=status,
        reason=reason,
        message=message,
        route=route.label if route else None,
        rule=rule,
        subject=subject,
        roles=roles,
        upstream_headers={},
        response_headers=response_headers or {},
        policy=policy,
        reuse_until=reuse,
    )


def invalid_input(
    policy: str | None,
    ctx: RequestContext,
    route: CompiledRoute,
    refused: tuple[int, Reason, str, tuple[InputError, ...]],
    limit_headers: Mapping[str, str],
    metered: Metered | None,
) -> Decision:
    """The body or query failed its schema (step 6), after the limits took their count."""
    status, reason, message, errors = refused
    subject, roles = who(ctx)
    return new_decision(
        allow=False,
        status=status,
        reason=reason,
        message=message,
        route=route.label,
        rule=ctx.rule,
        subject=subject,
        roles=roles,
        upstream_headers=NO_HEADERS,
        response_headers=limit_headers,
        errors=errors,
        policy=policy,
        reuse_until=0.0,
        metered=metered,
    )


def allow(
    policy: str | None,
    ctx: RequestContext,
    route: CompiledRoute,
    upstream_names: tuple[str, str],
    limit_headers: Mapping[str, str],
    reuse: float,
    metered: Metered | None,
) -> Decision:
    """The allow, with the identity handed upstream under `upstream_names` (subject, roles)."""
    identity = ctx.identity
    subject: str | None = None
    roles: tuple[str, ...] = ()
    upstream = NO_HEADERS
    if identity is not None:
        subject_header, roles_header = upstream_names
        subject, roles = identity.subject, identity.role_list
        upstream = {subject_header: identity.subject, roles_header: identity.roles_header}
    return new_decision(
        allow=True,
        status=200,
        reason=_ALLOW,
        message="allowed",
        route=route.label,
        rule=ctx.rule,
        subject=subject,
        roles=roles,
        upstream_headers=upstream,
        response_headers=limit_headers,
        policy=policy,
        reuse_until=reuse,
        metered=metered,
    )


def ban_refusal(
    policy: str | None,
    ctx: RequestContext,
    route: CompiledRoute,
    held: LimitOutcome,
    trace: Trace | None,
) -> Decision | None:
    """503 when the store could not say, 403 `abuse.banned` while a ban holds."""
    if held.allowed:
        return None
    if held.unavailable:
        status, reason, message = (
            503,
            Reason.RATE_LIMIT_UNAVAILABLE,
            "rate-limit store unavailable",
        )
        headers = held.headers
    else:
        name = ban_name(held.exceeded or "")
        status, reason, message = (
            403,
            Reason.BANNED,
            f"banned by `{name}` after repeated failures",
        )
        headers = {"Retry-After": str(max(1, whole_seconds(micros(held.retry_after))))}
    if trace is not None:
        trace.add(f"bans: {message}")
    return deny(policy, status, reason, message, route, response_headers=headers)


def unreusable(decision: Decision) -> Decision:
    """A decision on a route with bans is never reused: each must see the bans and
    count towards them (a cache would skip both)."""
    if decision.reuse_until == 0.0 and decision.metered is None:
        return decision
    return decision._replace(reuse_until=0.0, metered=None)


def limit_refusal(outcome: LimitOutcome) -> tuple[int, Reason, str] | None:
    """503 when the store failed closed, 429 when a limit refused, else None."""
    if outcome.unavailable:
        return 503, Reason.RATE_LIMIT_UNAVAILABLE, "rate-limit store unavailable"
    if not outcome.allowed:
        return 429, Reason.RATE_LIMITED, f"rate limit `{outcome.exceeded}` exceeded"
    return None
