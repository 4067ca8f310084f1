"""The Redis store: one exact count shared by every process and replica.

Each check is one EVALSHA of limits.lua with the keys of every limit of the request
(the script is loaded again when Redis answers NOSCRIPT, e.g. after a restart). On an
event loop the checks pending together share one round trip (batch.py); threads share
a blocking pool of `pool_size` connections and wait for a free one. The URL names one
server, a Cluster or a Sentinel-watched primary (connect.py makes the clients).
The script reads Redis's own clock by default, so replicas whose clocks disagree still
share one exact window; `clock="engine"` uses the engine's clock instead (tests, replays).

When Redis cannot answer within `timeout_ms`, `on_store_error` decides: `deny` (the
default: fail closed, 503 `ratelimit.unavailable`), `allow` (fail open), or `local`
(count in this process's memory until Redis is back). After a failure Redis is left
alone for `recovery_ms` so that an outage does not add a timeout to every decision;
then the next check tries it again, and the first success ends the outage.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.resources
import logging
import math
import threading
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from redis.exceptions import NoScriptError, RedisClusterException, RedisError

from policyengine.context import RequestContext
from policyengine.ratelimit.algorithm import Quota, micros
from policyengine.ratelimit.base import LimitOutcome
from policyengine.ratelimit.batch import ScriptBatcher, StoreFailed
from policyengine.ratelimit.connect import (
    ClientOptions,
    StoreAddress,
    async_client,
    parse_store_url,
    sync_client,
)
from policyengine.ratelimit.headers import HeaderMode, outcome
from policyengine.ratelimit.memory import DEFAULT_MAX_BYTES, MemoryLimiter, MemoryStats
from policyengine.ratelimit.plan import LimitPlan

if TYPE_CHECKING:
    from policyengine.ratelimit.connect import SyncClient

log = logging.getLogger("policyengine.ratelimit")

SCRIPT = importlib.resources.files(__package__).joinpath("limits.lua").read_text("utf-8")
SCRIPT_SHA = hashlib.sha1(SCRIPT.encode()).hexdigest()
STORE_ERRORS = (RedisError, RedisClusterException, OSError)  # a cluster's are no RedisError
DEFAULT_POOL_SIZE = 32  # connections for threads (the Python API); an event loop uses one


class StoreErrorMode(StrEnum):
    DENY = "deny"
    ALLOW = "allow"
    LOCAL = "local"


class ClockSource(StrEnum):
    SERVER = "server"
    ENGINE = "engine"


@dataclass(frozen=True, slots=True)
class RedisStats:
    checks: int  # answered by Redis
    refused: int  # of those, refused by a limit
    store_errors: int  # round trips that failed
    store_skipped: int  # checks decided without asking Redis, while resting it
    store_down: bool
    local: MemoryStats | None  # the fallback store, with on_store_error local


class _Health:
    """The store's failures: counted, logged once per outage, and rested after."""

    def __init__(self, recovery_s: float, address: StoreAddress) -> None:
        self._lock = threading.Lock()
        self.recovery_s = recovery_s
        self._address = address  # to take the password out of drivers' messages
        self._retry_at = 0.0
        self.down = False
        self.checks = self.refused = self.errors = self.skipped = 0

    def resting(self) -> bool:
        if not self.down or time.monotonic() >= self._retry_at:
            return False
        with self._lock:
            self.skipped += 1
        return True

    def failed(self, err: Exception) -> None:
        with self._lock:
            self.errors += 1
            self._retry_at = time.monotonic() + self.recovery_s
            was_down, self.down = self.down, True
        if not was_down:
            log.warning(
                "rate-limit store unreachable (%s: %s); asking again in %.1fs",
                type(err).__name__,
                self._address.redact(str(err)),
                self.recovery_s,
            )

    def answered(self, admitted: bool) -> None:
        with self._lock:
            self.checks += 1
            self.refused += not admitted
            was_down, self.down = self.down, False
        if was_down:
            log.warning("rate-limit store reachable again")


class RedisLimiter:
    """Rate limits kept in Redis: for several workers or replicas behind one policy."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str | None = None,  # the deployment's default: hash-tagged for a cluster
        timeout_ms: int = 100,
        on_store_error: StoreErrorMode | str = StoreErrorMode.DENY,
        recovery_ms: int = 1000,
        headers: HeaderMode | str = HeaderMode.IETF,
        clock: ClockSource | str = ClockSource.SERVER,
        local_max_bytes: int = DEFAULT_MAX_BYTES,
        pool_size: int = DEFAULT_POOL_SIZE,
        ca_file: str | None = None,
    ) -> None:
        if timeout_ms <= 0 or recovery_ms < 0 or pool_size < 1:
            raise ValueError(
                "timeout_ms must be above 0, recovery_ms at least 0 and pool_size at least 1"
            )
        self._address = parse_store_url(url, ca_file=ca_file)  # holds the password
        self._prefix = self._address.default_prefix if prefix is None else prefix
        self._address.check_prefix(self._prefix)
        self._options = ClientOptions(timeout_ms / 1000, pool_size, ca_file)
        self._timeout_s = timeout_ms / 1000
        self._mode = StoreErrorMode(on_store_error)
        self._headers = HeaderMode(headers)
        self._clock = ClockSource(clock)
        self._health = _Health(recovery_ms / 1000, self._address)
        self._local = (
            MemoryLimiter(max_bytes=local_max_bytes, headers=self._headers)
            if self._mode is StoreErrorMode.LOCAL
            else None
        )
        self._client: SyncClient | None = None  # made when first used: see _sync_client
        self._client_lock = threading.Lock()
        self._batchers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, ScriptBatcher]
        self._batchers = weakref.WeakKeyDictionary()
        self._last_batcher: tuple[weakref.ref[asyncio.AbstractEventLoop], ScriptBatcher] | None
        self._last_batcher = None  # the loop held weakly, as in _batchers

    def __repr__(self) -> str:
        deployment, mode = self._address.deployment.value, self._mode.value
        return f"RedisLimiter({deployment}, prefix={self._prefix!r}, on_store_error={mode!r})"

    # -- the Limiter protocol ----------------------------------------------------------
    def check(self, plan: LimitPlan, ctx: RequestContext) -> LimitOutcome:
        return self.take(plan, plan.derive(ctx), micros(ctx.now))

    def take(self, plan: LimitPlan, keys: tuple[bytes, ...], now_us: int) -> LimitOutcome:
        return self._ask(plan, keys, now_us, False)

    async def take_async(
        self, plan: LimitPlan, keys: tuple[bytes, ...], now_us: int
    ) -> LimitOutcome:
        return await self._ask_async(plan, keys, now_us, False)

    def peek(self, plan: LimitPlan, keys: tuple[bytes, ...], now_us: int) -> LimitOutcome:
        return self._ask(plan, keys, now_us, True)

    async def peek_async(
        self, plan: LimitPlan, keys: tuple[bytes, ...], now_us: int
    ) -> LimitOutcome:
        return await self._ask_async(plan, keys, now_us, True)

    def _ask(
        self, plan: LimitPlan, keys: tuple[bytes, ...], now_us: int, peek: bool
    ) -> LimitOutcome:
        if self._health.resting():
            return self._without_store(plan, keys, now_us, peek)
        names, args = self._script_input(plan, keys, now_us, peek)
        try:
            reply = self._evalsha(names, args)
        except STORE_ERRORS as err:
            self._health.failed(err)
            return self._without_store(plan, keys, now_us, peek)
        return self._answer(plan, reply)

    async def _ask_async(
        self, plan: LimitPlan, keys: tuple[bytes, ...], now_us: int, peek: bool
    ) -> LimitOutcome:
        if self._health.resting():
            return self._without_store(plan, keys, now_us, peek)
        try:
            call = self._script_input(plan, keys, now_us, peek)
            reply = await self._batcher().evalsha(call)
        except StoreFailed:  # the batcher counted and logged the cause
            return self._without_store(plan, keys, now_us, peek)
        return self._answer(plan, reply)

    def stats(self) -> RedisStats:
        health = self._health
        local = self._local.stats() if self._local is not None else None
        return RedisStats(
            health.checks, health.refused, health.errors, health.skipped, health.down, local
        )

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    async def aclose(self) -> None:
        loop = asyncio.get_running_loop()
        batcher = self._batchers.pop(loop, None)
        if self._last_batcher is not None and self._last_batcher[0]() is loop:
            self._last_batcher = None
        if batcher is not None:
            await batcher.aclose()

    # -- Redis ---------------------------------------------------------------------------
    def _script_input(
        self, plan: LimitPlan, keys: tuple[bytes, ...], now_us: int, peek: bool = False
    ) -> tuple[list[str], list[str]]:
        prefix, rules = self._prefix, plan.rules
        names = [f"{prefix}{rules[i].name}:{keys[i].hex()}" for i in range(len(rules))]
        now = str(now_us) if self._clock is ClockSource.ENGINE else ""
        return names, [("?" if peek else "") + now + plan.script_rules]

    def _answer(self, plan: LimitPlan, reply: Any) -> LimitOutcome:
        admitted, quotas = _parse(reply, len(plan.rules))
        self._health.answered(admitted)
        return outcome(plan, quotas, admitted, self._headers)

    def _evalsha(self, keys: list[str], args: list[str]) -> Any:
        client = self._sync_client()
        try:
            return client.evalsha(SCRIPT_SHA, len(keys), *keys, *args)
        except NoScriptError:
            client.script_load(SCRIPT)
            return client.evalsha(SCRIPT_SHA, len(keys), *keys, *args)

    def _sync_client(self) -> SyncClient:
        """Made on first use, as a cluster client asks a node for the slots as it is made:
        a store down at start is then a store error like any other, not a crash."""
        client = self._client
        if client is None:
            with self._client_lock:
                if self._client is None:
                    self._client = sync_client(self._address, self._options)
                client = self._client
        return client

    def _batcher(self) -> ScriptBatcher:
        """One per event loop: asyncio connections belong to the loop that made them.
        The last one found is kept at hand: a server has one loop, and the weak map's
        lookup is interpreted code (about half a microsecond a check)."""
        loop = asyncio.get_running_loop()
        last = self._last_batcher
        if last is not None and last[0]() is loop:
            return last[1]
        batcher = self._batchers.get(loop)
        if batcher is None:
            client = async_client(self._address, self._options)
            batcher = ScriptBatcher(
                client, (SCRIPT_SHA, SCRIPT), self._timeout_s, self._health.failed
            )
            self._batchers[loop] = batcher
        self._last_batcher = (weakref.ref(loop), batcher)
        return batcher

    # -- without Redis -------------------------------------------------------------------
    def _without_store(
        self, plan: LimitPlan, keys: tuple[bytes, ...], now_us: int, peek: bool
    ) -> LimitOutcome:
        if self._mode is StoreErrorMode.ALLOW:
            return LimitOutcome(True)
        if self._local is not None:
            local = self._local
            return local.peek(plan, keys, now_us) if peek else local.take(plan, keys, now_us)
        wait = max(1, math.ceil(self._health.recovery_s))
        return LimitOutcome(
            False, retry_after=wait, headers={"Retry-After": str(wait)}, unavailable=True
        )


def _parse(reply: Any, count: int) -> tuple[bool, list[Quota]]:
    """The script's reply: admitted, then (available, wait) for each limit."""
    if not isinstance(reply, list) or len(reply) != 1 + 2 * count:
        raise ValueError("unexpected reply from the rate-limit script")
    values: Sequence[int] = [int(value) for value in reply]
    quotas = [Quota(values[1 + 2 * i], values[2 + 2 * i]) for i in range(count)]
    return values[0] == 1, quotas
