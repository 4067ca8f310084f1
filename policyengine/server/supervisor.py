"""`policyengine serve`: check the policy, then run one worker here or N in children.

With `--workers N` this process binds the port first (without listening: it keeps
the port and learns its number), forks N workers that each bind it again with
SO_REUSEPORT, forwards SIGHUP and SIGTERM to them, and restarts a worker that
dies, unless workers keep dying right after they start.
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import multiprocessing.connection
import os
import shutil
import signal
import sys
import tempfile
import time
from multiprocessing.process import BaseProcess
from pathlib import Path
from types import FrameType

from policyengine.bundle.source import Unpacked, redacted
from policyengine.errors import PolicyError
from policyengine.ratelimit import limiter_from_url
from policyengine.server.bundles import first_bundle
from policyengine.server.config import ServerConfig
from policyengine.server.tls import TlsError, server_context
from policyengine.server.worker import bind, build_engine, run_worker

log = logging.getLogger("policyengine.server")
QUICK_DEATH = 2.0  # seconds: a worker dying sooner than this after its start is crashing
MAX_QUICK_DEATHS = 5


def serve(config: ServerConfig) -> int:
    """Run until SIGTERM or SIGINT; the exit status. Raises PolicyError for a bad policy,
    TlsError for TLS files that do not load, BundleError for a first bundle refused."""
    if config.tls is not None:
        server_context(config.tls)  # fail here, before any fork
    if config.bundle is None:
        return _serve(config)
    unpacked = Unpacked()
    try:  # the first bundle, verified and unpacked once for every worker: or no start
        directory, revision = first_bundle(config.bundle, unpacked)
        log.info("bundle revision %s from %s", revision, redacted(config.bundle.location))
        return _serve(dataclasses.replace(config, policy_dir=directory, revision=revision))
    finally:
        unpacked.remove()


def _serve(config: ServerConfig) -> int:
    if config.workers == 1:
        signal.signal(signal.SIGHUP, signal.SIG_IGN)  # until the loop handles it: reload
        run_worker(config)
        return 0
    engine = build_engine(config, limiter_from_url(None))  # fail here, before any fork
    if config.redis_url is None and engine.policy.limits:
        log.warning(
            "rate limits are counted per worker (%d workers and no --redis): a "
            "client may get up to %d times each limit",
            config.workers,
            config.workers,
        )
    return Supervisor(config).run()


class Supervisor:
    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.stopping = False
        self.workers: dict[int, tuple[BaseProcess, float]] = {}  # slot -> process, start time
        self.metrics_dir = Path(tempfile.mkdtemp(prefix="policyengine-metrics-"))
        self._context = multiprocessing.get_context("fork")

    def run(self) -> int:
        reserve = bind(self.config.host, self.config.port, reuse_port=True, listen=False)
        self.config = dataclasses.replace(self.config, port=reserve.getsockname()[1])
        reserve_grpc = None
        if self.config.grpc_port is not None:  # every worker's gRPC server binds it again
            reserve_grpc = bind(
                self.config.host, self.config.grpc_port, reuse_port=True, listen=False
            )
            self.config = dataclasses.replace(self.config, grpc_port=reserve_grpc.getsockname()[1])
        signal.signal(signal.SIGTERM, self._on_stop)
        signal.signal(signal.SIGINT, self._on_stop)
        signal.signal(signal.SIGHUP, self._on_hangup)
        try:
            for slot in range(self.config.workers):
                self._start(slot)
            return self._watch()
        finally:
            self._stop_all()
            reserve.close()
            if reserve_grpc is not None:
                reserve_grpc.close()
            shutil.rmtree(self.metrics_dir, ignore_errors=True)

    def _start(self, slot: int) -> None:
        process = self._context.Process(
            target=_worker_main,
            args=(self.config, self.metrics_dir),
            name=f"policyengine-worker-{slot}",
            daemon=False,
        )
        process.start()
        self.workers[slot] = (process, time.monotonic())

    def _watch(self) -> int:
        quick_deaths = 0
        while not self.stopping:
            sentinels = [process.sentinel for process, _ in self.workers.values()]
            multiprocessing.connection.wait(sentinels, timeout=0.5)
            for slot, (process, started) in list(self.workers.items()):
                if process.is_alive() or self.stopping:
                    continue
                quick = time.monotonic() - started < QUICK_DEATH
                quick_deaths = quick_deaths + 1 if quick else 0
                log.error("worker %s exited with status %s", process.pid, process.exitcode)
                if quick_deaths >= MAX_QUICK_DEATHS:
                    log.error("workers keep dying as they start: giving up")
                    return 1
                self._start(slot)
        return 0

    def _stop_all(self) -> None:
        for process, _ in self.workers.values():
            if process.is_alive() and process.pid is not None:
                os.kill(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + self.config.limits.drain_timeout + 5.0
        for process, _ in self.workers.values():
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join()

    def _on_stop(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True

    def _on_hangup(self, signum: int, frame: FrameType | None) -> None:
        for process, _ in self.workers.values():
            if process.is_alive() and process.pid is not None:
                os.kill(process.pid, signal.SIGHUP)


def _worker_main(config: ServerConfig, metrics_dir: Path) -> None:
    # The parent's handlers are not the worker's; its event loop installs its own once
    # the policy is loaded, and a SIGHUP before then must not kill it.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        run_worker(config, metrics_dir)
    except PolicyError as err:
        log.error("cannot load the policy:\n%s", err.render())
        sys.exit(2)
    except TlsError as err:
        log.error("error[%s]: %s", err.code, err)
        sys.exit(2)
    except OSError as err:
        log.error("cannot serve: %s", err)
        sys.exit(1)
