"""`serve --bundle`: poll the bundle location, unpack each new verified revision, and
hand it to the Reloader, which builds it aside and swaps it in like any reload.

Whatever goes wrong (unreachable, 5xx, unsigned, badly signed, tampered, a policy
that does not compile) is logged with its code and the previous revision keeps
serving; no request fails because of a poll.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

from policyengine.bundle.manifest import BundleError
from policyengine.bundle.signing import load_public_key
from policyengine.bundle.source import BundleSource, Unpacked, redacted
from policyengine.engine import Engine
from policyengine.server.config import BundleConfig
from policyengine.server.metrics import Metrics
from policyengine.server.reload import Built, EngineHolder

log = logging.getLogger("policyengine.server")


def first_bundle(config: BundleConfig, unpacked: Unpacked) -> tuple[Path, str]:
    """The bundle to start with, unpacked; raises BundleError (the server does not start)."""
    source = BundleSource(config.location, load_public_key(config.public_key))
    bundle = source.poll()
    assert bundle is not None  # a new source has seen nothing yet
    return unpacked.write(bundle), bundle.revision


class BundleWatcher:
    def __init__(
        self,
        config: BundleConfig,
        holder: EngineHolder,
        metrics: Metrics,
        build_at: Callable[[Path], Engine],
        start: tuple[Path, str | None],
    ) -> None:
        self.config = config
        self.holder = holder
        self.metrics = metrics
        self.build_at = build_at
        self.source = BundleSource(config.location, load_public_key(config.public_key))
        self.unpacked = Unpacked()
        self.staged = start  # the directory and revision the next build reads
        self.request: Callable[[str], None] | None = None
        self._poller: asyncio.Task[None] | None = None

    def build(self) -> Built:
        directory, revision = self.staged
        return self.build_at(directory), revision

    def start(self, request: Callable[[str], None]) -> None:
        self.request = request
        self._poller = asyncio.get_running_loop().create_task(self._poll())

    def stop(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
        self.unpacked.remove()

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.config.poll)
            await self.check()

    async def check(self) -> None:
        """Fetch once; a new revision is unpacked and reloaded."""
        loop = asyncio.get_running_loop()
        try:
            bundle = await loop.run_in_executor(None, self.source.poll)
            if bundle is None or bundle.revision == self.staged[1]:
                if self.staged[1] == self.holder.revision:  # reachable, and the newest serves
                    self.metrics.reload_failing = 0
                return
            keep = self.staged[0]
            directory = await loop.run_in_executor(None, self.unpacked.write, bundle, keep)
        except BundleError as err:
            self.metrics.reload(ok=False)
            log.error(
                "bundle from %s refused, still serving revision %s: %s",
                redacted(self.config.location),
                self.holder.revision,
                err.render(),
            )
            return
        except OSError as err:
            self.metrics.reload(ok=False)
            log.error("cannot unpack the bundle, still serving the previous revision: %s", err)
            return
        self.staged = (directory, bundle.revision)
        if self.request is not None:
            self.request(f"bundle revision {bundle.revision}")
