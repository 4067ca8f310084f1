"""The Engine: a compiled policy set and the one decision procedure every face calls.

Order of evaluation (LANGUAGE.md): normalize -> match -> authenticate -> authorize ->
rate-limit -> validate input -> allow. Any exception inside is a deny (500 `internal`).
"""

from __future__ import annotations

import logging
import math
import os
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from policyengine.authn import Authenticator, AuthnFailure, AuthnUnavailable
from policyengine.authn.base import ambiguous
from policyengine.compile import CompiledPolicy, compile_policy_set
from policyengine.context import RequestContext
from policyengine.decision import Decision, Identity, InputRefused, Reason, Request
from policyengine.hardening import overridden_method, override_refusal
from policyengine.hosts import BadHost, HostSet, request_host
from policyengine.inputs import MissingBody, check_input
from policyengine.loader import load_policy_set, parse_text
from policyengine.paths import BadPath, normalize_target, segments_to_path
from policyengine.ratelimit import Limiter, LimitOutcome, default_limiter
from policyengine.ratelimit.algorithm import micros, whole_seconds
from policyengine.ratelimit.bans import BanPlan, ban_name
from policyengine.ratelimit.plan import Metered
from policyengine.trace import Trace
from policyengine.tree import AllowKind, AllowRule, CompiledRoute

log = logging.getLogger("policyengine")
_NO_HEADERS: Mapping[str, str] = MappingProxyType({})
_FOREVER = float("inf")


@dataclass(frozen=True, slots=True)
class EngineOptions:
    subject_header: str = "X-Auth-Subject"
    roles_header: str = "X-Auth-Roles"
    # a route with `body` when no body reached the engine (Request.body is None)
    on_missing_body: MissingBody = MissingBody.DENY
    # told the name of each ban this engine starts (the sidecar counts them in /metrics)
    on_ban: Callable[[str], None] | None = None


@dataclass(frozen=True, slots=True)
class Explanation:
    decision: Decision
    trace: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"decision": self.decision.to_dict(), "trace": list(self.trace)}


class Engine:
    """Immutable once built; a reload builds a new Engine and swaps the reference."""

    def __init__(
        self,
        policy: CompiledPolicy,
        *,
        limiter: Limiter | None = None,
        clock: Callable[[], float] = time.time,
        options: EngineOptions | None = None,
    ) -> None:
        self.policy = policy
        self.limiter = limiter or default_limiter()
        self.clock = clock
        self.options = options or EngineOptions()

    @classmethod
    def load(cls, directory: str | os.PathLike[str], **kwargs: Any) -> Engine:
        """Parse and compile every `*.policy` below `directory`; raises PolicyError."""
        return cls(compile_policy_set(load_policy_set(directory)), **kwargs)

    @classmethod
    def from_text(
        cls, text: str, *, name: str = "inline.policy", directory: str = ".", **kwargs: Any
    ) -> Engine:
        return cls(compile_policy_set(parse_text(text, name, directory)), **kwargs)

    # -- the three entry points ------------------------------------------------------
    def decide(self, request: Request) -> Decision:
        return self._guarded(request, None)

    async def decide_async(self, request: Request) -> Decision:
        """The same decision; rate limits go through the limiter's async path."""
        try:
            routed = self._route(request, None)
            if isinstance(routed, Decision):
                return routed
            route = routed.route
            assert route is not None
            if route.bans is not None:
                return await self._banned_async(routed, route, route.bans)
            return await self._judge_async(routed, route)
        except InputRefused as refused:  # names differ: mypyc types one name once
            return self._unreadable(refused, None)
        except Exception as err:
            return self._internal_error(err)

    async def _judge_async(self, routed: RequestContext, route: CompiledRoute) -> Decision:
        """Steps 3-7 of decide_async."""
        failure = await self._authenticate_async(routed)
        if failure is not None:
            return failure
        verdict = self._check_rules(routed, route, None)
        if not isinstance(verdict, str):
            return verdict
        routed.rule = verdict
        if route.plain:
            return self._allow(routed, route, _NO_HEADERS, routed.reuse_until, None)
        plan = route.limits
        if plan is None:
            return self._finish(routed, route, None, None, None)
        keys = plan.derive(routed)
        outcome = await self.limiter.take_async(plan, keys, micros(routed.now))
        return self._finish(routed, route, outcome, keys, None)

    def explain(self, request: Request) -> Explanation:
        trace = Trace()
        decision = self._guarded(request, trace)
        return Explanation(decision, tuple(trace.lines))

    # -- the procedure ---------------------------------------------------------------
    def _guarded(self, request: Request, trace: Trace | None) -> Decision:
        """The steps in order, as decide_async takes them. Step 3 (authenticate) is
        written out here: this is the path of every decision, and each call saved here
        is time off every request."""
        try:
            ctx = self._route(request, trace)
            if isinstance(ctx, Decision):
                return ctx
            route = ctx.route
            assert route is not None
            if route.bans is not None:
                return self._banned(ctx, route, route.bans, trace)
            return self._judge(ctx, route, trace)
        except InputRefused as refused:
            return self._unreadable(refused, trace)
        except Exception as err:
            return self._internal_error(err)

    def _judge(self, ctx: RequestContext, route: CompiledRoute, trace: Trace | None) -> Decision:
        """Steps 3-7, written out: the path of every decision (each call saved here is
        time off every request)."""
        try:
            authenticator = self._addressee(ctx, route, trace)
            if authenticator is not None:
                ctx.identity = authenticator.authenticate(ctx)
                if trace is not None:
                    trace.add(f"authn {authenticator.name}: {ctx.identity.subject}")
        except AuthnFailure as failure:
            return self._authn_denied(ctx, failure, trace)
        except AuthnUnavailable as down:
            return self._idp_unavailable(ctx, down, trace)
        verdict = self._check_rules(ctx, route, trace)
        if not isinstance(verdict, str):
            return verdict
        ctx.rule = verdict
        if route.plain:  # without reading the route's limits and schemas
            return self._allow(ctx, route, _NO_HEADERS, ctx.reuse_until, trace)
        plan = route.limits
        if plan is None:
            return self._finish(ctx, route, None, None, trace)
        keys = plan.derive(ctx)
        outcome = self.limiter.take(plan, keys, micros(ctx.now))
        return self._finish(ctx, route, outcome, keys, trace)

    # -- bans (ratelimit/bans.py) ----------------------------------------------------------
    def _banned(
        self, ctx: RequestContext, route: CompiledRoute, bans: BanPlan, trace: Trace | None
    ) -> Decision:
        """A route with bans: refused while one holds, before any credential is read;
        otherwise decided, and a failure counted towards each ban that counts it."""
        now = micros(ctx.now)
        held = self.limiter.peek(bans.markers, bans.marker_keys(ctx), now)
        refusal = self._ban_refusal(ctx, held, trace)
        if refusal is not None:
            return refusal
        decision = self._judge(ctx, route, trace)
        for ban in bans.counting(decision.status):
            failures = ban.failures
            if failures is None or ban.starts(
                self.limiter.take(failures, failures.derive(ctx), now)
            ):
                started = self.limiter.take(ban.marker, ban.marker.derive(ctx), now)
                self._ban_started(ban.name, started, trace)
        return _unreusable(decision)

    async def _banned_async(
        self, ctx: RequestContext, route: CompiledRoute, bans: BanPlan
    ) -> Decision:
        """_banned, with the limiter's async path."""
        now = micros(ctx.now)
        held = await self.limiter.peek_async(bans.markers, bans.marker_keys(ctx), now)
        refusal = self._ban_refusal(ctx, held, None)
        if refusal is not None:
            return refusal
        decision = await self._judge_async(ctx, route)
        for ban in bans.counting(decision.status):
            failures = ban.failures
            if failures is None or ban.starts(
                await self.limiter.take_async(failures, failures.derive(ctx), now)
            ):
                started = await self.limiter.take_async(ban.marker, ban.marker.derive(ctx), now)
                self._ban_started(ban.name, started, None)
        return _unreusable(decision)

    def _ban_started(self, name: str, marker: LimitOutcome, trace: Trace | None) -> None:
        """The marker taken: a ban starts (unless another request started it first)."""
        if not marker.allowed or marker.unavailable:
            return
        if trace is not None:
            trace.add(f"ban {name}: starts")
        on_ban = self.options.on_ban
        if on_ban is not None:
            on_ban(name)

    def _ban_refusal(
        self, ctx: RequestContext, held: LimitOutcome, trace: Trace | None
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
        return self._deny(status, reason, message, ctx.route, response_headers=headers)

    def _route(self, request: Request, trace: Trace | None) -> Decision | RequestContext:
        """Normalize and match: the context of a matched request, or the deny."""
        hardening = self.policy.hardening
        try:
            segments, raw_query = normalize_target(
                request.path, hardening.double_encoding, hardening.unicode_separators
            )
        except BadPath as err:
            if trace is not None:
                trace.add(f"normalize: rejected ({err})")
            return self._deny(400, Reason.BAD_PATH, f"bad path: {err}", reusable=True)
        method = request.method
        if hardening.method_override:
            overridden, override = overridden_method(request.headers, raw_query)
            if overridden is not None:
                method = overridden
                if trace is not None:
                    trace.add(f"normalize: method overridden to {method} (permit method_override)")
        else:
            override = override_refusal(request.headers, raw_query)
        if override is not None:
            if trace is not None:
                trace.add(f"normalize: rejected ({override[1]})")
            return self._deny(400, override[0], override[1], reusable=True)
        policy = self.policy
        host: str | None = None
        if policy.names_hosts or request.path[:1] != "/":
            try:
                host = request_host(request.path, request.headers)
            except BadHost as bad_host:  # not `err`: mypyc types one name once (BadPath)
                if trace is not None:
                    trace.add(f"host: rejected ({bad_host})")
                return self._deny(400, Reason.BAD_HOST, f"bad host: {bad_host}", reusable=True)
            if policy.hosts is not None:
                refused = self._host_refusal(host, policy.hosts, None, trace)
                if refused is not None:
                    return refused
        match = policy.tree.match(segments, method)
        if match is None:
            path = segments_to_path(segments)
            if trace is not None:
                trace.add(f"normalize: {path}")
                trace.add(f"match: no route for {method} {path}")
            return self._deny(403, Reason.UNMATCHED, f"no route for {method} {path}", reusable=True)
        route, captures = match
        if trace is not None:
            trace.add(f"normalize: {segments_to_path(segments)}")
            trace.add(f"match: {route.label} ({route.site})")
        if route.hosts is not None:
            refused = self._host_refusal(host, route.hosts, route, trace)
            if refused is not None:
                return refused
        ctx = RequestContext(request, segments, raw_query, self.clock(), route, captures)
        ctx.method = method
        return ctx

    def _host_refusal(
        self, host: str | None, hosts: HostSet, route: CompiledRoute | None, trace: Trace | None
    ) -> Decision | None:
        """400 when the request names no host, 421 (RFC 9110 §15.5.20) for one that is not
        served here; None when `hosts` admits it."""
        if host is None:
            if trace is not None:
                trace.add("host: none named")
            return self._deny(400, Reason.BAD_HOST, "bad host: the request names no host",
                              route, reusable=True)  # fmt: skip
        if hosts.admits(host):
            if trace is not None:
                trace.add(f"host: {host} is served")
            return None
        if trace is not None:
            trace.add(f"host: {host} is not among {hosts.text}")
        return self._deny(421, Reason.HOST_MISMATCH, f"host `{host}` is not served here",
                          route, reusable=True)  # fmt: skip

    async def _authenticate_async(self, ctx: RequestContext) -> Decision | None:
        """Step 3 as _guarded takes it; blocks that call an IdP do so off the event loop."""
        assert ctx.route is not None
        try:
            authenticator = self._addressee(ctx, ctx.route, None)
            if authenticator is None:
                pass
            elif authenticator.waits:
                ctx.identity = await authenticator.authenticate_async(ctx)
            else:  # no coroutine to build and step for a block that never waits
                ctx.identity = authenticator.authenticate(ctx)
        except AuthnFailure as failure:
            return self._authn_denied(ctx, failure, None)
        except AuthnUnavailable as down:
            return self._idp_unavailable(ctx, down, None)
        return None

    @staticmethod
    def _addressee(
        ctx: RequestContext, route: CompiledRoute, trace: Trace | None
    ) -> Authenticator | None:
        """The authn block the request's credential is for; None when none is presented.

        When several blocks see a credential (a `jwt` and an `introspect` block both see
        a bearer token), the first that prefers it wins, else the first that sees it.
        Credentials from different sources (an API key and a bearer token) are refused
        as ambiguous: which caller it is would depend on which a backend reads.
        """
        if ctx.identity is not None:
            if trace is not None:
                trace.add(f"authn: identity given ({ctx.identity.subject})")
            return None
        authenticators = route.authenticators
        if len(authenticators) == 1:  # the common case, without building a list
            only = authenticators[0]
            if only.presented(ctx):
                return only
            if trace is not None:
                trace.add("authn: no credentials presented")
            return None
        presented = [a for a in authenticators if a.presented(ctx)]
        if not presented:
            if trace is not None:
                trace.add("authn: no credentials presented")
            return None
        if len(presented) == 1:
            return presented[0]
        if any(a.source != presented[0].source for a in presented):
            raise ambiguous("more than one credential: " + " and ".join(
                dict.fromkeys(a.name for a in presented)))  # fmt: skip
        return next((a for a in presented if a.prefers(ctx)), presented[0])

    def _authn_denied(
        self,
        ctx: RequestContext,
        failure: AuthnFailure,
        trace: Trace | None,
    ) -> Decision:
        if trace is not None:
            trace.add(f"authn: {failure.message}")
        headers = {"WWW-Authenticate": failure.challenge} if failure.challenge else {}
        return self._deny(failure.status, failure.reason, failure.message, ctx.route,
                          response_headers=headers)  # fmt: skip

    def _idp_unavailable(
        self, ctx: RequestContext, down: AuthnUnavailable, trace: Trace | None
    ) -> Decision:
        """The credential could not be checked (JWKS or introspection unreachable): a
        named 503 a client may retry, never a 401 (the token may be good) nor a 500."""
        if trace is not None:
            trace.add(f"authn: unavailable ({down})")
        log.warning("identity provider unavailable: %s; failing closed", down)
        retry = str(max(1, math.ceil(down.retry_after)))
        return self._deny(503, Reason.AUTHN_UNAVAILABLE, "identity provider unavailable",
                          ctx.route, response_headers={"Retry-After": retry})  # fmt: skip

    def _check_rules(
        self, ctx: RequestContext, route: CompiledRoute, trace: Trace | None
    ) -> Decision | str:
        """A deny decision, or the site of the allow rule that let the request through."""
        identity = ctx.identity
        if identity is None and route.needs_identity:
            if trace is not None:
                trace.add("authn: every allow rule needs an identity")
            return self._credentials_required(route, ctx)
        for deny in route.denies:
            if deny.roles is not None and (
                identity is None or deny.roles.isdisjoint(identity.roles)
            ):
                if trace is not None:
                    trace.add(f"deny {deny.site}: role does not apply ({deny.text})")
                continue
            if deny.condition is None or deny.condition(ctx):
                if trace is not None:
                    trace.add(f"deny {deny.site}: matched ({deny.text})")
                return self._deny(
                    403,
                    Reason.DENIED,
                    f"denied by the rule at {deny.site}",
                    route,
                    ctx,
                    rule=deny.site,
                    reusable=True,
                )
            if trace is not None:
                trace.add(f"deny {deny.site}: condition false ({deny.text})")
        lacking: AllowRule | None = None  # the first rule that only a scope kept shut
        for allow in route.allows:
            kind = allow.kind
            if kind is not AllowKind.ANYONE and kind is not AllowKind.WHEN and identity is None:
                why_not = "needs an identity"
            elif allow.roles is not None and (
                identity is None or not _holds_one_of(identity, allow.roles)
            ):
                why_not = "role does not match"
            elif allow.scopes is not None and (
                identity is None or not allow.scopes <= identity.scopes
            ):
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
            return self._credentials_required(route, ctx)
        if lacking is not None:
            return self._insufficient_scope(ctx, route, identity, lacking)
        roles = identity.role_list
        who = f"role {', '.join(roles)}" if roles else f"`{identity.subject}`"
        return self._deny(
            403, Reason.NO_ALLOW, f"{who} may not {route.label}", route, ctx, reusable=True
        )

    def _insufficient_scope(
        self, ctx: RequestContext, route: CompiledRoute, identity: Identity, rule: AllowRule
    ) -> Decision:
        """403 with the RFC 6750 §3.1 challenge naming the scopes the rule needs."""
        # the realm of the bearer block that made the identity, when it made one
        prefix = next(
            (c for a in route.authenticators
             if a.name == identity.authn and (c := a.challenge()) and c.startswith("Bearer ")),
            "Bearer",
        )  # fmt: skip
        separator = " " if prefix == "Bearer" else ", "
        challenge = f'{prefix}{separator}error="insufficient_scope", scope="{rule.scope_text}"'
        return self._deny(403, Reason.INSUFFICIENT_SCOPE,
                          f"insufficient scope: needs `{rule.scope_text}`", route, ctx,
                          response_headers={"WWW-Authenticate": challenge},
                          reusable=True)  # fmt: skip

    def _credentials_required(self, route: CompiledRoute, ctx: RequestContext) -> Decision:
        challenge = next((c for a in route.authenticators if (c := a.challenge())), None)
        headers = {"WWW-Authenticate": challenge} if challenge else {}
        return self._deny(401, Reason.AUTHN_MISSING, "credentials required", route, ctx,
                          response_headers=headers, reusable=True)  # fmt: skip

    def _finish(
        self,
        ctx: RequestContext,
        route: CompiledRoute,
        outcome: LimitOutcome | None,
        keys: tuple[bytes, ...] | None,
        trace: Trace | None,
    ) -> Decision:
        """Steps 5-7: the limiter's verdict, the input checks, then the allow."""
        limit_headers = _NO_HEADERS
        metered = None
        if outcome is not None:
            refusal = self._limit_refusal(ctx, route, outcome, trace)
            if refusal is not None:
                return refusal
            limit_headers = outcome.headers
            # the same request again reaches the same verdict once its limits allow it
            if route.limits is not None and keys is not None and route.body is None:
                metered = Metered(route.limits, keys, ctx.reuse_until)
        if route.body is not None or route.query is not None:
            problem = check_input(route, ctx, self.options.on_missing_body)
            if problem is not None:
                status, reason, message, errors = problem
                if trace is not None:
                    trace.add(f"input: {message}")
                subject, roles = self._who(ctx)
                return Decision(False, status, reason, message, route.label, ctx.rule,
                                subject, roles, _NO_HEADERS, limit_headers, errors,
                                self.policy.name, 0.0, metered)  # fmt: skip
        # counted by a limit or checked against a body: the next request is not the same
        reuse = 0.0 if route.limits is not None or route.body is not None else ctx.reuse_until
        return self._allow(ctx, route, limit_headers, reuse, trace, metered)

    def _allow(
        self,
        ctx: RequestContext,
        route: CompiledRoute,
        limit_headers: Mapping[str, str],
        reuse: float,
        trace: Trace | None,
        metered: Metered | None = None,
    ) -> Decision:
        if trace is not None:
            trace.add("decision: allow")
        identity = ctx.identity
        if identity is None:
            return Decision(True, 200, Reason.ALLOW, "allowed", route.label, ctx.rule,
                            None, (), _NO_HEADERS, limit_headers, (), self.policy.name,
                            reuse, metered)  # fmt: skip
        upstream = {
            self.options.subject_header: identity.subject,
            self.options.roles_header: identity.roles_header,
        }
        return Decision(True, 200, Reason.ALLOW, "allowed", route.label, ctx.rule,
                        identity.subject, identity.role_list, upstream, limit_headers, (),
                        self.policy.name, reuse, metered)  # fmt: skip

    async def take_again(self, decision: Decision) -> Decision:
        """A metered decision reused (the sidecar's cache): its limits taken from again,
        now; a 429 or 503 when they refuse, else the same decision with their headers."""
        metered = decision.metered
        if metered is None:
            raise ValueError("only a metered decision (Decision.metered) is taken again")
        plan, keys = metered.plan, metered.keys
        outcome = await self.limiter.take_async(plan, keys, micros(self.clock()))
        refused = _refusal(outcome)
        if refused is None:
            return decision._replace(response_headers=outcome.headers)
        status, reason, message = refused
        return Decision(False, status, reason, message, decision.route, decision.rule,
                        decision.subject, decision.roles, {}, outcome.headers,
                        policy=decision.policy)  # fmt: skip

    def _limit_refusal(
        self, ctx: RequestContext, route: CompiledRoute, outcome: LimitOutcome, trace: Trace | None
    ) -> Decision | None:
        """503 when the store failed closed, 429 when a limit refused, else None."""
        refused = _refusal(outcome)
        if refused is None:
            if trace is not None:
                trace.add("limits: within quota")
            return None
        status, reason, message = refused
        if trace is not None:
            trace.add(f"limits: {message}")
        return self._deny(status, reason, message, route, ctx,
                          rule=ctx.rule, response_headers=outcome.headers)  # fmt: skip

    @staticmethod
    def _who(ctx: RequestContext | None) -> tuple[str | None, tuple[str, ...]]:
        if ctx is None or ctx.identity is None:
            return None, ()
        return ctx.identity.subject, ctx.identity.role_list

    def _deny(
        self,
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
        subject, roles = self._who(ctx)
        reuse = (ctx.reuse_until if ctx is not None else _FOREVER) if reusable else 0.0
        return Decision(
            False,
            status,
            reason,
            message,
            route.label if route else None,
            rule,
            subject,
            roles,
            {},
            response_headers or {},
            policy=self.policy.name,
            reuse_until=reuse,
        )

    def _unreadable(self, err: InputRefused, trace: Trace | None) -> Decision:
        if trace is not None:
            trace.add(f"input: {err.message}")
        return Decision(False, err.status, err.reason, err.message, errors=err.errors,
                        policy=self.policy.name)  # fmt: skip

    def _internal_error(self, err: Exception) -> Decision:
        # The traceback names code, not data: the exception's message may hold request data.
        frames = "".join(traceback.format_tb(err.__traceback__))
        log.error("internal error (%s), failing closed:\n%s", type(err).__name__, frames)
        return Decision(False, 500, Reason.INTERNAL, "internal error", policy=self.policy.name)


def _holds_one_of(identity: Identity, role_set: frozenset[str]) -> bool:
    """Whether the identity holds a role of `role_set`. Probed with its role_list, which
    the decision reads anyway, rather than its frozenset: one object less to pull into
    cache (unless it holds more roles than the set has: then the set is the shorter walk)."""
    role_list = identity.role_list
    if len(role_list) > len(role_set):
        return not role_set.isdisjoint(identity.roles)
    return any(role in role_set for role in role_list)


def _unreusable(decision: Decision) -> Decision:
    """A decision on a route with bans is never reused: each must see the bans and
    count towards them (a cache would skip both)."""
    if decision.reuse_until == 0.0 and decision.metered is None:
        return decision
    return decision._replace(reuse_until=0.0, metered=None)


def _refusal(outcome: LimitOutcome) -> tuple[int, Reason, str] | None:
    """503 when the store failed closed, 429 when a limit refused, else None."""
    if outcome.unavailable:
        return 503, Reason.RATE_LIMIT_UNAVAILABLE, "rate-limit store unavailable"
    if not outcome.allowed:
        return 429, Reason.RATE_LIMITED, f"rate limit `{outcome.exceeded}` exceeded"
    return None
