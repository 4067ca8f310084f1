"""The sidecar's endpoints: a thin adapter from HTTP to `Engine.decide_async` and back.

Every decision endpoint does the same four things: build a Request the way its
gateway describes the original request (adapters), decide, render the decision
the way that gateway understands (render), count and log it. Nothing here knows
any policy logic. Any exception on the way becomes a deny (500, fail closed).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import secrets
import time
import traceback
from collections.abc import Callable

from policyengine.decision import Decision, new_decision
from policyengine.engine import Engine
from policyengine.request import Reason, Request, without_forwarded
from policyengine.server import adapters, render
from policyengine.server.adapters import Refusal
from policyengine.server.clientip import ClientAddresses
from policyengine.server.config import ServerConfig
from policyengine.server.decisionlog import DecisionLog
from policyengine.server.eager import Suspended, start_eagerly
from policyengine.server.message import HttpRequest
from policyengine.server.metrics import Metrics
from policyengine.server.reload import EngineHolder
from policyengine.server.render import Renderer
from policyengine.server.responses import (
    PROMETHEUS,
    TEXT,
    Response,
    UnsafeHeaderValue,
    error_response,
)
from policyengine.server.reuse import DecisionCache, Key, Reused, reusable_until
from policyengine.server.tracecontext import span_ids
from policyengine.server.tracing import DecisionTracer

log = logging.getLogger("policyengine.server")

Reply = Response | asyncio.Future[Response]
_OK = Response(200, TEXT, b"ok\n")
_NOT_READY = Response(503, TEXT, b"not ready\n")
_NOT_FOUND = error_response(404, "request.not_found", "no such endpoint")
_POST_ONLY = error_response(405, "request.method", "use POST")
_GET_ONLY = error_response(405, "request.method", "use GET")


def log_internal_error(err: BaseException) -> None:
    """Name the code, never the data: an exception's message may hold request data."""
    frames = "".join(traceback.format_tb(err.__traceback__))
    log.error("internal error (%s), failing closed:\n%s", type(err).__name__, frames)


class DecisionIds:
    """Short ids unique across workers and restarts: a random prefix and a counter."""

    __slots__ = ("_counter", "_prefix")

    def __init__(self) -> None:
        self._prefix = secrets.token_hex(4)
        self._counter = itertools.count(1)

    def next(self) -> str:
        return f"{self._prefix}-{next(self._counter):x}"


class App:
    def __init__(
        self,
        config: ServerConfig,
        holder: EngineHolder,
        metrics: Metrics,
        decision_log: DecisionLog | None,
        *,
        tracer: DecisionTracer | None = None,
    ) -> None:
        self.holder = holder
        self.metrics = metrics
        self.decision_log = decision_log
        self.tracer = tracer  # a span per decision, over OTLP
        self.draining = False
        self._addresses = ClientAddresses(config.trusted_proxies)
        self._heads = render.Heads(config.identity_headers)
        self._gateway: Renderer = render.nginx if config.nginx_mode else render.forward_auth
        self._ids = DecisionIds()
        self._cache_size = config.decision_cache
        self._cache: DecisionCache | None = None
        self._endpoints: dict[str, Callable[[HttpRequest], Reply]] = {
            "/v1/forward-auth": self._forward_auth,
            "/v1/decide": self._decide,
            "/healthz": self._healthz,
            "/readyz": self._readyz,
            "/metrics": self._metrics,
        }

    def handle(self, http: HttpRequest) -> Reply:
        endpoint = self._endpoints.get(http.target)  # gateways send no query: one lookup
        if endpoint is not None:
            return endpoint(http)
        path = http.target.partition("?")[0]
        endpoint = self._endpoints.get(path)
        if endpoint is not None:
            return endpoint(http)
        if path.startswith(adapters.ENVOY_PREFIX):
            return self._envoy(http)
        return _NOT_FOUND

    # -- decision endpoints ------------------------------------------------------------
    def _forward_auth(self, http: HttpRequest) -> Reply:
        started = time.perf_counter_ns()
        cache, key, reused = self._reused("forward-auth", http, self._gateway, started)
        if reused is not None:
            return reused
        request = adapters.forward_auth_request(http, self._client_ip(http))
        return self._decision("forward-auth", http, request, self._gateway, started, cache, key)

    def _envoy(self, http: HttpRequest) -> Reply:
        started = time.perf_counter_ns()
        cache, key, reused = self._reused("envoy", http, render.envoy, started)
        if reused is not None:
            return reused
        request = adapters.envoy_request(http, self._client_ip(http))
        if request is None:
            return _NOT_FOUND
        return self._decision("envoy", http, request, render.envoy, started, cache, key)

    def envoy_grpc(self, http: HttpRequest, renderer: Renderer) -> Reply:
        """Envoy's gRPC Check, given as the HTTP check request Envoy would have sent
        (server.envoy_grpc builds it); `renderer` answers in a CheckResponse."""
        started = time.perf_counter_ns()
        cache, key, reused = self._reused("envoy-grpc", http, renderer, started)
        if reused is not None:
            return reused
        request = adapters.envoy_request(http, self._client_ip(http))
        if request is None:
            refused = Refusal("the request path must start with `/`")
            return self._decision("envoy-grpc", http, refused, renderer, started, cache, key)
        return self._decision("envoy-grpc", http, request, renderer, started, cache, key)

    def _reused(
        self, endpoint: str, http: HttpRequest, renderer: Renderer, started: int
    ) -> tuple[DecisionCache | None, Key | None, Reply | None]:
        """The decision cache of the engine in use, the request's key in it, and the
        answer when it holds a decision for that key."""
        cache = self._cache
        if cache is None or cache.engine is not self.holder.engine:
            if self._cache_size <= 0:
                return None, None, None
            cache = self._cache = DecisionCache(self.holder.engine, self._cache_size)
        key = cache.key(endpoint, http)
        entry = cache.get(key)
        if entry is None:
            return cache, key, None
        self.metrics.reused += 1
        if entry.decision.metered is not None:  # counted again: a new answer every time
            answer = self._take_again(entry, cache.engine, endpoint, renderer, started, http)
            return cache, key, answer
        if entry.response is None:  # a deny (its own id), or a logged allow
            answer = self._finish(endpoint, entry.method, entry.target, entry.decision, renderer,
                                  started, http=http)  # fmt: skip
            return cache, key, answer
        self.metrics.count(entry.series, (time.perf_counter_ns() - started) // 1000)
        return cache, key, entry.response

    def _take_again(
        self,
        entry: Reused,
        engine: Engine,
        endpoint: str,
        renderer: Renderer,
        started: int,
        http: HttpRequest,
    ) -> Reply:
        try:
            coro = engine.take_again(entry.decision)
            outcome = start_eagerly(coro)
        except Exception as err:
            outcome = self._internal(err, engine.policy.name)
        if isinstance(outcome, Suspended):
            policy = entry.decision.policy
            return outcome.then(
                lambda decision: self._finish(endpoint, entry.method, entry.target, decision,
                                              renderer, started, http=http),
                lambda err: self._internal(err, policy),
            )  # fmt: skip
        return self._finish(endpoint, entry.method, entry.target, outcome, renderer, started,
                            http=http)  # fmt: skip

    def _decide(self, http: HttpRequest) -> Reply:
        if http.method != "POST":
            return _POST_ONLY
        started = time.perf_counter_ns()
        request = adapters.decide_request(http)
        if isinstance(request, Refusal):
            self.metrics.http_error(Reason.BAD_REQUEST.value)
            return error_response(400, Reason.BAD_REQUEST.value, request.message)
        return self._decision("decide", http, request, render.decide, started, None, None)

    def _client_ip(self, http: HttpRequest) -> str | None:
        client = http.client
        if client is None:
            return None
        if not client.trusted:
            return client.text
        headers = http.headers
        return self._addresses.client_ip(
            client, headers.get("x-forwarded-for"), headers.get("x-real-ip")
        )

    def _decision(
        self,
        endpoint: str,
        http: HttpRequest,
        request: Request | Refusal,
        renderer: Renderer,
        started: int,
        cache: DecisionCache | None,
        key: Key | None,
    ) -> Reply:
        # read once: a reload swaps it between requests only; the cache is this engine's
        engine = cache.engine if cache is not None else self.holder.engine
        if isinstance(request, Refusal):
            refused = new_decision(allow=False, status=400, reason=Reason.BAD_REQUEST,
                                   message=request.message, policy=engine.policy.name)  # fmt: skip
            return self._finish(endpoint, http.method, http.target, refused, renderer, started,
                                http=http)  # fmt: skip
        forwarded = engine.policy.inputs.forwarded
        if forwarded and (http.client is None or not http.client.trusted):
            request = without_forwarded(request, forwarded)  # a client naming its own cert
        try:
            coro = engine.decide_async(request)
            outcome = start_eagerly(coro)
        except Exception as err:
            outcome = self._internal(err, engine.policy.name)
        if isinstance(outcome, Suspended):
            policy, asked = engine.policy.name, request
            return outcome.then(
                lambda decision: self._finish(endpoint, asked.method, asked.path, decision,
                                              renderer, started, cache, key, http, asked),
                lambda err: self._internal(err, policy),
            )  # fmt: skip
        return self._finish(
            endpoint,
            request.method,
            request.path,
            outcome,
            renderer,
            started,
            cache,
            key,
            http,
            request,
        )

    def _finish(
        self,
        endpoint: str,
        method: str,
        target: str,
        decision: Decision,
        renderer: Renderer,
        started: int,
        cache: DecisionCache | None = None,
        key: Key | None = None,
        http: HttpRequest | None = None,
        request: Request | None = None,
    ) -> Response:
        # an allow needs no id unless it is logged: the deny's id is in its response
        decision_id = self._ids.next() if not decision.allow or self.decision_log else ""
        try:
            response = renderer(decision, decision_id, self._heads)
        except UnsafeHeaderValue as err:
            decision = self._internal(err, decision.policy)
            decision_id = decision_id or self._ids.next()
            response = renderer(decision, decision_id, self._heads)
        # a Reason is its own code (StrEnum), and `.value` costs 90 ns a request
        series = self.metrics.series(
            (endpoint, decision.route or "", decision.status, decision.reason)
        )
        if (
            key is not None
            and cache is not None
            and reusable_until(decision) > 0.0
            and cache.admits(key)
        ):
            # an allow's response is its own every time, unless logged or counted
            same_every_time = decision.allow and self.decision_log is None and not decision.metered
            reused = Reused(decision, response if same_every_time else None, method, target, series)
            cache.put(key, reused)
        latency_us = (time.perf_counter_ns() - started) // 1000
        self.metrics.count(series, latency_us)
        if self.decision_log is not None or self.tracer is not None:
            self._log(decision, decision_id, method, target, latency_us, http, request)
        return response

    def _log(
        self,
        decision: Decision,
        decision_id: str,
        method: str,
        target: str,
        latency_us: int,
        http: HttpRequest | None,
        request: Request | None,
    ) -> None:
        """The decision's span (with a tracer) and log line. ECS lines and spans also name
        the client (the decided request's, else the one the gateway's headers give) and
        the trace of the `traceparent` sent here."""
        decision_log, tracer = self.decision_log, self.tracer
        if http is None or (tracer is None and decision_log is not None and not decision_log.ecs):
            if decision_log is not None:
                decision_log.record(decision, decision_id, method, target, latency_us,
                                    revision=self.holder.revision)  # fmt: skip
            return
        client_ip = request.client_ip if request is not None else self._client_ip(http)
        traceparent = http.headers.get("traceparent")
        revision = self.holder.revision  # the bundle's, else the policy's own
        if tracer is not None:
            ids = tracer.record(decision, method=method, path=target.partition("?")[0],
                                latency_us=latency_us, traceparent=traceparent,
                                source_ip=client_ip, decision_id=decision_id,
                                revision=revision)  # fmt: skip
        else:
            ids = span_ids(traceparent)
        if decision_log is not None:
            decision_log.record(decision, decision_id, method, target, latency_us,
                                source_ip=client_ip, ids=ids, revision=revision)  # fmt: skip

    @staticmethod
    def _internal(err: BaseException, policy: str | None) -> Decision:
        log_internal_error(err)
        return new_decision(allow=False, status=500, reason=Reason.INTERNAL,
                            message="internal error", policy=policy)  # fmt: skip

    # -- operations endpoints ----------------------------------------------------------
    def _healthz(self, http: HttpRequest) -> Reply:
        return _OK if http.method in ("GET", "HEAD") else _GET_ONLY

    def _readyz(self, http: HttpRequest) -> Reply:
        if http.method not in ("GET", "HEAD"):
            return _GET_ONLY
        if self.draining:
            return _NOT_READY
        return Response(200, TEXT, f"ok {self.holder.revision}\n".encode())

    def _metrics(self, http: HttpRequest) -> Reply:
        if http.method not in ("GET", "HEAD"):
            return _GET_ONLY
        # prometheus_client loads on the first scrape, not with the server
        from policyengine.server.exposition import render as exposition

        return Response(200, PROMETHEUS, exposition(self.metrics.totals()))
