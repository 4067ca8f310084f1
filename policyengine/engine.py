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
from typing import Any, Final

from policyengine.answers import (
    NO_HEADERS,
    allow,
    ban_refusal,
    deny,
    invalid_input,
    limit_refusal,
    unreusable,
)
from policyengine.authenticate import addressee
from policyengine.authenticator import AuthnFailure, AuthnUnavailable
from policyengine.authorize import check_rules
from policyengine.compile import CompiledPolicy, compile_policy_set
from policyengine.context import MAX_UNCHECKED_BODY, FieldReader, RequestContext
from policyengine.decision import Decision, new_decision, with_response_headers
from policyengine.hardening import FIELDS as OVERRIDE_FIELDS
from policyengine.hardening import overridden_method, override_refusal
from policyengine.hosts import BadHost, HostSet, request_host
from policyengine.inputs import MissingBody, check_input
from policyengine.loader import load_policy_set, parse_text
from policyengine.paths import BadPath, normalize_target, segments_to_path
from policyengine.ratelimit import Limiter, LimitOutcome, default_limiter
from policyengine.ratelimit.algorithm import micros
from policyengine.ratelimit.bans import BanPlan
from policyengine.ratelimit.plan import LimitPlan, Metered
from policyengine.request import InputRefused, LowercaseHeaders, Reason, Request
from policyengine.trace import Trace
from policyengine.tree import CompiledRoute

log = logging.getLogger("policyengine")
# C statics compiled: the hot path looks up neither a class nor an enum member by name
_LOWERCASE: Final = LowercaseHeaders
_UNMATCHED: Final = Reason.UNMATCHED


class MatchedContext(RequestContext):
    """A request matched to its route: what the steps after the match work on."""

    route: CompiledRoute


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
        # the header fields its decisions read (the override fields always)
        self.fields = FieldReader((*policy.inputs.headers, *OVERRIDE_FIELDS))
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
        """The same decision, step for step as _guarded takes it: only the calls to an
        identity provider and to the limiter's store are awaited."""
        try:
            ctx = self._route(request, None)
            if isinstance(ctx, Decision):
                return ctx
            route = ctx.route
            if route.bans is not None:
                return await self._banned_async(ctx, route, route.bans)
            return await self._judge_async(ctx, route)
        except InputRefused as refused:  # names differ: mypyc types one name once
            return self._unreadable(refused, None)
        except Exception as err:
            return self._internal_error(err)

    async def _judge_async(self, ctx: MatchedContext, route: CompiledRoute) -> Decision:
        """Steps 3-7 as _judge takes them, with the same step functions."""
        try:
            authenticator = addressee(ctx, route.authenticators, None)
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
        plan = self._authorize(ctx, route, None)
        if isinstance(plan, Decision):
            return plan
        keys = plan.derive(ctx)
        outcome = await self.limiter.take_async(plan, keys, micros(ctx.now))
        return self._finish(ctx, route, outcome, keys, None)

    def explain(self, request: Request) -> Explanation:
        trace = Trace()
        decision = self._guarded(request, trace)
        return Explanation(decision, tuple(trace.lines))

    # -- the procedure ---------------------------------------------------------------
    def _guarded(self, request: Request, trace: Trace | None) -> Decision:
        """The steps in order, as decide_async takes them: normalize and match, then
        (bans aside) authenticate, authorize, take from the limits, finish."""
        try:
            ctx = self._route(request, trace)
            if isinstance(ctx, Decision):
                return ctx
            route = ctx.route
            if route.bans is not None:
                return self._banned(ctx, route, route.bans, trace)
            return self._judge(ctx, route, trace)
        except InputRefused as refused:
            return self._unreadable(refused, trace)
        except Exception as err:
            return self._internal_error(err)

    def _judge(self, ctx: MatchedContext, route: CompiledRoute, trace: Trace | None) -> Decision:
        """Steps 3-7: the path of every decision."""
        try:
            authenticator = addressee(ctx, route.authenticators, trace)
            if authenticator is not None:
                ctx.identity = authenticator.authenticate(ctx)
                if trace is not None:
                    trace.add(f"authn {authenticator.name}: {ctx.identity.subject}")
        except AuthnFailure as failure:
            return self._authn_denied(ctx, failure, trace)
        except AuthnUnavailable as down:
            return self._idp_unavailable(ctx, down, trace)
        plan = self._authorize(ctx, route, trace)
        if isinstance(plan, Decision):
            return plan
        keys = plan.derive(ctx)
        outcome = self.limiter.take(plan, keys, micros(ctx.now))
        return self._finish(ctx, route, outcome, keys, trace)

    def _authorize(
        self, ctx: MatchedContext, route: CompiledRoute, trace: Trace | None
    ) -> Decision | LimitPlan:
        """Step 4, and the end of the decision unless a limit must be taken from: the
        decision, or the limits of a request the rules let through."""
        verdict = check_rules(self.policy.name, ctx, route, trace)
        if not isinstance(verdict, str):
            return verdict
        ctx.rule = verdict
        if route.plain:  # without reading the route's limits and schemas
            return self._allow(ctx, route, NO_HEADERS, ctx.reuse_until, trace)
        plan = route.limits
        if plan is None:
            return self._finish(ctx, route, None, None, trace)
        return plan

    # -- bans (ratelimit/bans.py) ----------------------------------------------------------
    def _banned(
        self, ctx: MatchedContext, route: CompiledRoute, bans: BanPlan, trace: Trace | None
    ) -> Decision:
        """A route with bans: refused while one holds, before any credential is read;
        otherwise decided, and a failure counted towards each ban that counts it."""
        now = micros(ctx.now)
        held = self.limiter.peek(bans.markers, bans.marker_keys(ctx), now)
        refusal = ban_refusal(self.policy.name, ctx, route, held, trace)
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
        return unreusable(decision)

    async def _banned_async(
        self, ctx: MatchedContext, route: CompiledRoute, bans: BanPlan
    ) -> Decision:
        """_banned, with the limiter's async path."""
        now = micros(ctx.now)
        held = await self.limiter.peek_async(bans.markers, bans.marker_keys(ctx), now)
        refusal = ban_refusal(self.policy.name, ctx, route, held, None)
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
        return unreusable(decision)

    def _ban_started(self, name: str, marker: LimitOutcome, trace: Trace | None) -> None:
        """The marker taken: a ban starts (unless another request started it first)."""
        if not marker.allowed or marker.unavailable:
            return
        if trace is not None:
            trace.add(f"ban {name}: starts")
        on_ban = self.options.on_ban
        if on_ban is not None:
            on_ban(name)

    def _route(self, request: Request, trace: Trace | None) -> Decision | MatchedContext:
        """Normalize and match: the context of a matched request, or the deny."""
        hardening = self.policy.hardening
        try:
            segments, raw_query = normalize_target(
                request.path, hardening.double_encoding, hardening.unicode_separators
            )
        except BadPath as err:
            if trace is not None:
                trace.add(f"normalize: rejected ({err})")
            return deny(self.policy.name, 400, Reason.BAD_PATH, f"bad path: {err}", reusable=True)
        method = request.method
        headers = request.headers
        # the fields decisions read, in one pass (a mapping in any case; the sidecar's
        # LowercaseHeaders are read as they are)
        fields = None if type(headers) is _LOWERCASE else self.fields.read(headers)
        if hardening.method_override:
            overridden, override = overridden_method(request.headers, raw_query)
            if overridden is not None:
                method = overridden
                if trace is not None:
                    trace.add(f"normalize: method overridden to {method} (permit method_override)")
        else:
            override = override_refusal(headers if fields is None else fields, raw_query)
        if override is not None:
            if trace is not None:
                trace.add(f"normalize: rejected ({override[1]})")
            return deny(self.policy.name, 400, override[0], override[1], reusable=True)
        policy = self.policy
        host: str | None = None
        if policy.names_hosts or request.path[:1] != "/":
            try:
                host = request_host(request.path, request.headers)
            except BadHost as bad_host:  # not `err`: mypyc types one name once (BadPath)
                if trace is not None:
                    trace.add(f"host: rejected ({bad_host})")
                return deny(
                    self.policy.name, 400, Reason.BAD_HOST, f"bad host: {bad_host}", reusable=True
                )
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
            return deny(
                self.policy.name,
                403,
                _UNMATCHED,
                f"no route for {method} {path}",
                reusable=True,
            )
        route, captures = match
        if trace is not None:
            trace.add(f"normalize: {segments_to_path(segments)}")
            trace.add(f"match: {route.label} ({route.site})")
        if route.hosts is not None:
            refused = self._host_refusal(host, route.hosts, route, trace)
            if refused is not None:
                return refused
        body_limit = route.body.max_bytes if route.body is not None else MAX_UNCHECKED_BODY
        ctx = MatchedContext(request, segments, raw_query, self.clock(), captures, route.label,
                             body_limit, fields, self.fields.names)  # fmt: skip
        ctx.route = route
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
            return deny(
                self.policy.name,
                400,
                Reason.BAD_HOST,
                "bad host: the request names no host",
                route,
                reusable=True,
            )
        if hosts.admits(host):
            if trace is not None:
                trace.add(f"host: {host} is served")
            return None
        if trace is not None:
            trace.add(f"host: {host} is not among {hosts.text}")
        return deny(
            self.policy.name,
            421,
            Reason.HOST_MISMATCH,
            f"host `{host}` is not served here",
            route,
            reusable=True,
        )

    def _authn_denied(
        self,
        ctx: MatchedContext,
        failure: AuthnFailure,
        trace: Trace | None,
    ) -> Decision:
        if trace is not None:
            trace.add(f"authn: {failure.message}")
        headers = {"WWW-Authenticate": failure.challenge} if failure.challenge else {}
        return deny(
            self.policy.name,
            failure.status,
            failure.reason,
            failure.message,
            ctx.route,
            response_headers=headers,
        )

    def _idp_unavailable(
        self, ctx: MatchedContext, down: AuthnUnavailable, trace: Trace | None
    ) -> Decision:
        """The credential could not be checked (JWKS or introspection unreachable): a
        named 503 a client may retry, never a 401 (the token may be good) nor a 500."""
        if trace is not None:
            trace.add(f"authn: unavailable ({down})")
        log.warning("identity provider unavailable: %s; failing closed", down)
        retry = str(max(1, math.ceil(down.retry_after)))
        return deny(
            self.policy.name,
            503,
            Reason.AUTHN_UNAVAILABLE,
            "identity provider unavailable",
            ctx.route,
            response_headers={"Retry-After": retry},
        )

    def _finish(
        self,
        ctx: RequestContext,
        route: CompiledRoute,
        outcome: LimitOutcome | None,
        keys: tuple[bytes, ...] | None,
        trace: Trace | None,
    ) -> Decision:
        """Steps 5-7: the limiter's verdict, the input checks, then the allow."""
        limit_headers = NO_HEADERS
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
                if trace is not None:
                    trace.add(f"input: {problem[2]}")
                return invalid_input(self.policy.name, ctx, route, problem, limit_headers, metered)
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
        upstream = (self.options.subject_header, self.options.roles_header)
        return allow(self.policy.name, ctx, route, upstream, limit_headers, reuse, metered)

    async def take_again(self, decision: Decision) -> Decision:
        """A metered decision reused (the sidecar's cache): its limits taken from again,
        now; a 429 or 503 when they refuse, else the same decision with their headers."""
        metered = decision.metered
        if metered is None:
            raise ValueError("only a metered decision (Decision.metered) is taken again")
        plan, keys = metered.plan, metered.keys
        outcome = await self.limiter.take_async(plan, keys, micros(self.clock()))
        refused = limit_refusal(outcome)
        if refused is None:
            return with_response_headers(decision, outcome.headers)
        status, reason, message = refused
        return new_decision(allow=False, status=status, reason=reason, message=message,
                        route=decision.route, rule=decision.rule, subject=decision.subject,
                        roles=decision.roles, upstream_headers={},
                        response_headers=outcome.headers, policy=decision.policy)  # fmt: skip

    def _limit_refusal(
        self, ctx: RequestContext, route: CompiledRoute, outcome: LimitOutcome, trace: Trace | None
    ) -> Decision | None:
        """503 when the store failed closed, 429 when a limit refused, else None."""
        refused = limit_refusal(outcome)
        if refused is None:
            if trace is not None:
                trace.add("limits: within quota")
            return None
        status, reason, message = refused
        if trace is not None:
            trace.add(f"limits: {message}")
        return deny(
            self.policy.name,
            status,
            reason,
            message,
            route,
            ctx,
            rule=ctx.rule,
            response_headers=outcome.headers,
        )

    def _unreadable(self, err: InputRefused, trace: Trace | None) -> Decision:
        if trace is not None:
            trace.add(f"input: {err.message}")
        return new_decision(allow=False, status=err.status, reason=err.reason, message=err.message,
                        errors=err.errors, policy=self.policy.name)  # fmt: skip

    def _internal_error(self, err: Exception) -> Decision:
        # The traceback names code, not data: the exception's message may hold request data.
        frames = "".join(traceback.format_tb(err.__traceback__))
        log.error("internal error (%s), failing closed:\n%s", type(err).__name__, frames)
        return new_decision(allow=False, status=500, reason=Reason.INTERNAL,
                        message="internal error", policy=self.policy.name)  # fmt: skip
