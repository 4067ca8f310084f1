"""The in-memory store: exact within one process, bounded in bytes, thread-safe.

Counters live in a cachetools LRU cache whose size is counted in bytes: each key is
charged `KEY_BYTES` (the 16-byte key, its state object and the cache's bookkeeping, as
measured on CPython 3.11) plus its log of admission times (8 bytes per request kept,
see algorithm.py). Once the budget is spent, the least recently used keys are forgotten
first, so a client that rotates keys cannot grow memory past `max_bytes`; the price is
that under such a flood the quietest keys lose their count early, and
`stats().evictions` says how often that happened. A key whose state has run out (its
window has passed, its bucket is full again) admits like a new key and is replaced by
a new state on its next admitted request, which also frees a long log.
"""

from __future__ import annotations

import sys
import threading
from dataclasses import dataclass

from cachetools import LRUCache

from policyengine.context import RequestContext
from policyengine.ratelimit.algorithm import (
    Kind,
    Quota,
    Rule,
    SlidingLog,
    State,
    admit,
    fits,
    micros,
    new_state,
    quota,
)
from policyengine.ratelimit.base import LimitOutcome
from policyengine.ratelimit.headers import HeaderMode, outcome
from policyengine.ratelimit.keys import limit_key, rules_of
from policyengine.tree import LimitSpec

KEY_BYTES = 380  # per tracked key besides its log; see tests/ratelimit (memory bound)
DEFAULT_MAX_BYTES = 64 * 1024 * 1024


class LimitTooLarge(ValueError):
    """A single key of this limit could outgrow the whole store."""


@dataclass(frozen=True, slots=True)
class MemoryStats:
    checks: int
    refused: int
    keys: int
    bytes: int
    max_bytes: int
    evictions: int


class _Counters(LRUCache[bytes, State]):
    """The cache, counting the keys it had to forget before their time."""

    evictions = 0

    def popitem(self) -> tuple[bytes, State]:
        item = super().popitem()
        self.evictions += 1
        return item


def _size_of(state: State) -> int:
    if isinstance(state, SlidingLog):
        return KEY_BYTES + sys.getsizeof(state.stamps)
    return KEY_BYTES


class MemoryLimiter:
    """Rate limits kept in this process: the default, and right for a single sidecar."""

    def __init__(
        self, *, max_bytes: int = DEFAULT_MAX_BYTES, headers: HeaderMode | str = HeaderMode.IETF
    ) -> None:
        if max_bytes < KEY_BYTES:
            raise ValueError(f"max_bytes must be at least {KEY_BYTES}")
        self._headers = HeaderMode(headers)
        self._max_bytes = max_bytes
        self._lock = threading.Lock()
        self._counters = _Counters(max_bytes, getsizeof=_size_of)
        self._checks = 0
        self._refused = 0

    def check(self, limits: tuple[LimitSpec, ...], ctx: RequestContext) -> LimitOutcome:
        rules = rules_of(limits)
        keys = [limit_key(rule, ctx) for rule in rules]
        now = micros(ctx.now)
        with self._lock:
            quotas, allowed = self._take(rules, keys, now)
        return outcome(rules, quotas, allowed, self._headers)

    async def check_async(self, limits: tuple[LimitSpec, ...], ctx: RequestContext) -> LimitOutcome:
        return self.check(limits, ctx)  # no I/O: the lock is held for microseconds

    def stats(self) -> MemoryStats:
        with self._lock:
            counters = self._counters
            return MemoryStats(
                self._checks,
                self._refused,
                len(counters),
                int(counters.currsize),
                self._max_bytes,
                counters.evictions,
            )

    def _take(
        self, rules: tuple[Rule, ...], keys: list[bytes], now: int
    ) -> tuple[list[Quota], bool]:
        """All or nothing: a request one limit refuses takes nothing from the others."""
        self._checks += 1
        states, quotas = [], []
        for key, rule in zip(keys, rules, strict=True):
            state = self._state(key, rule, now)
            states.append(state)
            quotas.append(quota(state, rule, now))
        if any(q.available < 1 for q in quotas):
            self._refused += 1
            return quotas, False
        for key, rule, state in zip(keys, rules, states, strict=True):
            admit(state, rule, now)
            self._counters[key] = state  # (re-)set: the cache re-reads its size
        return [q.admitted(rule) for q, rule in zip(quotas, rules, strict=True)], True

    def _state(self, key: bytes, rule: Rule, now: int) -> State:
        state = self._counters.get(key)
        if state is None or state.expires <= now or not fits(state, rule):
            self._check_size(rule)
            return new_state(rule)  # stored only once it admits a request
        return state

    def _check_size(self, rule: Rule) -> None:
        if rule.kind is not Kind.WINDOW:
            return
        # a full log, with the array's header and growth slack (1/16 + 7 items)
        most = KEY_BYTES + 64 + 8 * (rule.capacity + rule.capacity // 16 + 7)
        if most > self._max_bytes:
            raise LimitTooLarge(
                f"limit `{rule.name}` keeps up to {most} bytes per key, more than the "
                f"store's max_bytes ({self._max_bytes})"
            )
