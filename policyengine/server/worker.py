"""One worker: load the policy, listen, answer until SIGTERM, then drain.

The policy is loaded before the socket is bound, so a worker never answers
without one. With several workers each binds the same port with SO_REUSEPORT and
the kernel spreads connections over them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import gc
import logging
import signal
import socket
from collections.abc import Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any

from policyengine.engine import Engine, EngineOptions
from policyengine.ratelimit import Limiter, limiter_from_url
from policyengine.server.app import App
from policyengine.server.config import ServerConfig
from policyengine.server.connection import HttpConnection
from policyengine.server.decisionlog import DecisionLog, LogFormat
from policyengine.server.metrics import Metrics, limiter_stats
from policyengine.server.reload import Built, EngineHolder, Reloader
from policyengine.server.state import ServerState
from policyengine.server.tls import TlsContexts, grpc_server_credentials
from policyengine.server.tracing import DecisionTracer

if TYPE_CHECKING:
    from policyengine.server.bundles import BundleWatcher
    from policyengine.server.envoy_grpc import GrpcServer

log = logging.getLogger("policyengine.server")
BACKLOG = 2048


def bind(host: str, port: int, *, reuse_port: bool, listen: bool = True) -> socket.socket:
    """A non-blocking TCP socket bound to (host, port); raises OSError."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
        if listen:
            sock.listen(BACKLOG)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def build_engine(config: ServerConfig, limiter: Limiter, metrics: Metrics | None = None) -> Engine:
    """The same limiter for every engine a reload builds: counts survive reloads."""
    options = EngineOptions(
        subject_header=config.subject_header,
        roles_header=config.roles_header,
        on_missing_body=config.on_missing_body,
        on_ban=metrics.ban_started if metrics is not None else None,
    )
    return Engine.load(config.policy_dir, limiter=limiter, options=options)


# A request's objects die young, freed by their reference counts. With hundreds of
# decisions in flight (each waiting on the store, with its futures and coroutines) the
# default threshold of 700 starts a collection every hundred or so checks, and each one
# walks every object in flight: 1-2 us a check (docs/performance.md, "Redis store").
# 10,000 lets such bursts pass; cyclic garbage is still collected, later.
YOUNG_GENERATION = 10_000


def run_worker(config: ServerConfig, metrics_dir: Path | None = None) -> None:
    """Serve in this process until SIGTERM or SIGINT; raises PolicyError or OSError."""
    gc.set_threshold(YOUNG_GENERATION, *gc.get_threshold()[1:])
    _run(_serve(config, metrics_dir))


def _run(main: Coroutine[Any, Any, None]) -> None:
    try:
        import uvloop
    except ImportError:  # not on every platform: the standard loop works, slower
        asyncio.run(main)
        return
    uvloop.run(main)


async def _serve(config: ServerConfig, metrics_dir: Path | None) -> None:
    worker = await Worker.start(config, metrics_dir)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_signal_handler(signal.SIGHUP, worker.hangup)
    try:
        await stop.wait()
    finally:
        await worker.stop()


def _reloading(
    config: ServerConfig, limiter: Limiter, holder: EngineHolder, metrics: Metrics
) -> tuple[Reloader, BundleWatcher | None]:
    """The directory's files polled, or bundles polled and unpacked: one Reloader swaps."""
    if config.bundle is None:

        def build() -> Built:  # the revision: the policy's own (CompiledPolicy.revision)
            return build_engine(config, limiter, metrics), None

        return Reloader(holder, config.policy_dir, build, metrics, config.reload_interval), None

    from policyengine.server.bundles import BundleWatcher  # bundles only: cryptography

    def build_at(directory: Path) -> Engine:
        return build_engine(dataclasses.replace(config, policy_dir=directory), limiter, metrics)

    start = (config.policy_dir, config.revision)
    bundles = BundleWatcher(config.bundle, holder, metrics, build_at, start)
    return Reloader(holder, config.policy_dir, bundles.build, metrics, 0.0), bundles


class Worker:
    """Everything one serving process runs, inside its event loop."""

    def __init__(
        self,
        config: ServerConfig,
        limiter: Limiter,
        app: App,
        state: ServerState,
        server: asyncio.Server,
        reloader: Reloader,
        grpc: GrpcServer | None = None,
        tls: TlsContexts | None = None,
        bundles: BundleWatcher | None = None,
    ) -> None:
        self.config = config
        self.limiter = limiter
        self.app = app
        self.state = state
        self.server = server
        self.reloader = reloader
        self.grpc = grpc
        self.tls = tls
        self.bundles = bundles

    @classmethod
    async def start(cls, config: ServerConfig, metrics_dir: Path | None = None) -> Worker:
        """Load the policy, then listen; raises PolicyError or OSError."""
        loop = asyncio.get_running_loop()
        store = config.store
        limiter = limiter_from_url(
            config.redis_url,
            timeout_ms=store.timeout_ms,
            on_store_error=store.on_store_error,
            recovery_ms=store.recovery_ms,
            ca_file=store.ca_file,
        )
        metrics = Metrics(metrics_dir, limiter_stats(limiter))
        build = functools.partial(build_engine, config, limiter, metrics)
        engine = await loop.run_in_executor(None, build)
        holder = EngineHolder(engine, config.revision)
        metrics.revision = holder.revision
        decision_log = (
            DecisionLog.open(
                config.decision_log.target,
                config.decision_log.sample,
                LogFormat(config.decision_log.log_format),
            )
            if config.decision_log
            else None
        )
        tracer = DecisionTracer(config.otlp_endpoint) if config.otlp_endpoint else None
        app = App(config, holder, metrics, decision_log, tracer=tracer)
        state = ServerState(app, config.limits, config.trusted_proxies)
        tls = TlsContexts(config.tls) if config.tls is not None else None
        grpc = None
        if config.grpc_port is not None:  # first: an open HTTP port means both are up
            from policyengine.server.envoy_grpc import GrpcServer  # the `grpc` extra

            credentials = grpc_server_credentials(config.tls) if config.tls is not None else None
            grpc = await GrpcServer.start(
                app,
                config.trusted_proxies,
                config.limits,
                (config.host, config.grpc_port),
                reuse_port=config.workers > 1,
                credentials=credentials,
            )
        try:
            sock = bind(config.host, config.port, reuse_port=config.workers > 1)
            server = await loop.create_server(
                lambda: HttpConnection(state),
                sock=sock,
                backlog=BACKLOG,
                ssl=tls.listener if tls is not None else None,
                ssl_handshake_timeout=config.limits.request_timeout if tls is not None else None,
            )
        except OSError:
            if grpc is not None:
                await grpc.stop(0)
            raise
        reloader, bundles = _reloading(config, limiter, holder, metrics)
        state.start()
        reloader.start()
        if bundles is not None:
            bundles.start(reloader.request)
        if tls is not None:
            tls.start(config.reload_interval)
        worker = cls(config, limiter, app, state, server, reloader, grpc, tls, bundles)
        host, port = worker.address
        scheme = "https" if tls is not None else "http"
        name = holder.engine.policy.name or "-"
        log.info("serving policy `%s` on %s://%s:%s", name, scheme, host, port)
        if grpc is not None:
            secure = " with TLS" if tls is not None else ""
            log.info("serving Envoy ext_authz over gRPC%s on %s:%s", secure, host, grpc.port)
        return worker

    def hangup(self) -> None:
        """SIGHUP: load the policy and the TLS files again."""
        self.reloader.request("SIGHUP")
        if self.tls is not None:
            self.tls.check()

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.server.sockets[0].getsockname()[:2]
        return str(host), int(port)

    async def stop(self) -> None:
        """Stop accepting, let requests in flight finish (up to the drain timeout), close."""
        app, state = self.app, self.state
        app.draining = True
        self.server.close()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.limits.drain_timeout
        grpc_stopped = (
            asyncio.ensure_future(self.grpc.stop(self.config.limits.drain_timeout))
            if self.grpc is not None
            else None
        )
        while True:
            for connection in list(state.connections):
                connection.sweep(loop.time())  # closes the idle ones (draining)
            if not state.connections or loop.time() >= deadline:
                break
            await asyncio.sleep(0.05)
        for connection in list(state.connections):
            connection.abort()
        if grpc_stopped is not None:
            await grpc_stopped
        self.reloader.stop()
        if self.tls is not None:
            self.tls.stop()
        if self.bundles is not None:
            self.bundles.stop()
        state.stop()
        if app.decision_log is not None:
            app.decision_log.close()
        if app.tracer is not None:
            await asyncio.get_running_loop().run_in_executor(None, app.tracer.close)
        app.metrics.publish()
        close = getattr(self.limiter, "aclose", None)
        if close is not None:
            await close()
        log.info("stopped")
