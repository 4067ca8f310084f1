"""Hot reload: build the new Engine aside, swap one reference, keep the old on error.

Triggers are SIGHUP and a change in any file below the policy directory (polled:
size and mtime of every file, so keys files and schema files count too). The
build runs in a thread so the event loop keeps answering with the old engine;
requests read `holder.engine` once each, so every request is decided by exactly
one engine, old or new, and none fails because of a reload.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Callable
from pathlib import Path

from policyengine.engine import Engine
from policyengine.errors import PolicyError
from policyengine.files import visible_files
from policyengine.server.metrics import Metrics

log = logging.getLogger("policyengine.server")
MAX_WATCHED_FILES = 10_000
Fingerprint = tuple[tuple[str, int, int], ...]
Built = tuple[Engine, str | None]  # an engine and its bundle's revision (None: a directory)


class EngineHolder:
    """The engine in service and the revision the server reports for it: the bundle's it
    came from, else the policy's own (`CompiledPolicy.revision`). Replaced whole, never
    changed in place."""

    __slots__ = ("engine", "loaded_at", "revision")

    def __init__(self, engine: Engine, revision: str | None = None) -> None:
        self.engine = engine
        self.revision = revision or engine.policy.revision
        self.loaded_at = time.time()
        keep_out_of_collections()

    def swap(self, engine: Engine, revision: str | None = None) -> None:
        self.engine = engine
        self.revision = revision or engine.policy.revision
        self.loaded_at = time.time()
        keep_out_of_collections()


def keep_out_of_collections() -> None:
    """A compiled policy is a large graph that lives as long as it serves, and a full
    collection walks all of it (30-50 ms at 10,000 routes) while requests wait.
    Frozen objects are skipped. The previous engine's objects are unfrozen and
    collected first: one such pause per reload instead of one every few seconds."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()


def fingerprint(root: Path) -> Fingerprint:
    """(path, size, mtime) of every visible file below `root`, or of `root` itself."""
    paths = visible_files(root, MAX_WATCHED_FILES)
    marks = []
    for path in paths[:MAX_WATCHED_FILES]:
        try:
            stat = path.stat()
        except OSError:
            continue  # removed between the walk and the stat: the next poll sees it gone
        marks.append((str(path), stat.st_size, stat.st_mtime_ns))
    return tuple(marks)


class Reloader:
    def __init__(
        self,
        holder: EngineHolder,
        root: Path,
        build: Callable[[], Built],
        metrics: Metrics,
        interval: float,
    ) -> None:
        self.holder = holder
        self.root = root
        self.build = build
        self.metrics = metrics
        self.interval = interval
        self._seen = fingerprint(root)
        self._running: asyncio.Task[None] | None = None
        self._again = False
        self._poller: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self.interval > 0:
            self._poller = asyncio.get_running_loop().create_task(self._poll())

    def stop(self) -> None:
        if self._poller is not None:
            self._poller.cancel()

    def request(self, why: str) -> None:
        """Reload soon; a request during a reload runs one more after it."""
        log.info("reloading the policy (%s)", why)
        if self._running is not None and not self._running.done():
            self._again = True
            return
        self._running = asyncio.get_running_loop().create_task(self._reload())

    async def _poll(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.interval)
            current = await loop.run_in_executor(None, fingerprint, self.root)
            if current != self._seen:
                self._seen = current
                self.request("files changed")

    async def _reload(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self._again = False
            self._seen = await loop.run_in_executor(None, fingerprint, self.root)
            try:
                engine, revision = await loop.run_in_executor(None, self.build)
            except PolicyError as err:
                self.metrics.reload(ok=False)
                log.error("reload failed, still serving the previous policy:\n%s", err.render())
            except Exception:
                self.metrics.reload(ok=False)
                log.exception("reload failed, still serving the previous policy")
            else:
                self.holder.swap(engine, revision)
                self.metrics.reload(ok=True)
                self.metrics.revision = self.holder.revision
                count, at = engine.policy.route_count, self.holder.revision
                log.info("policy reloaded: %s routes (revision %s)", count, at)
            if not self._again:
                return
