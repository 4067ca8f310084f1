"""What every connection of one worker shares, and the once-a-second housekeeping."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Protocol

from policyengine.server.clientip import TrustedProxies
from policyengine.server.config import Limits
from policyengine.server.responses import DateHeader

if TYPE_CHECKING:
    from policyengine.server.app import App
    from policyengine.server.metrics import Metrics

log = logging.getLogger("policyengine.server")


class Tracked(Protocol):
    """A connection as the housekeeping and the drain see it (connection.py, which
    builds on this module)."""

    def sweep(self, now: float) -> None: ...

    def abort(self) -> None: ...


class ServerState:
    __slots__ = ("_ticker", "app", "connections", "date", "limits", "metrics", "now", "proxies")

    def __init__(self, app: App, limits: Limits, proxies: TrustedProxies) -> None:
        self.app = app
        self.limits = limits
        self.proxies = proxies
        self.metrics: Metrics = app.metrics
        self.date = DateHeader()
        self.connections: set[Tracked] = set()
        self.now = 0.0  # the loop's clock, to the second: enough for timeouts of seconds
        self._ticker: asyncio.TimerHandle | None = None

    @property
    def draining(self) -> bool:
        return self.app.draining

    def start(self) -> None:
        self.now = asyncio.get_running_loop().time()
        self._tick()

    def stop(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()

    def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        self.now = loop.time()
        self.date.refresh()
        for connection in list(self.connections):
            connection.sweep(self.now)
        try:
            if self.app.decision_log is not None:
                self.app.decision_log.flush()
            self.metrics.publish()
        except OSError as err:
            log.error("housekeeping failed: %s", err)
        self._ticker = loop.call_later(1.0, self._tick)
