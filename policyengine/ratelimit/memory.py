"""The in-memory store: exact within one process, bounded in bytes, thread-safe.

Counters live in an LRU map whose size is counted in bytes (an OrderedDict: every
operation is one C call, where cachetools' LRUCache cost a quarter of a limited
decision in Python frames): each key is
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
from collections import OrderedDict
from dataclasses import dataclass

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
from policyengine.ratelimit.plan import LimitPlan

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


class _Counters:
    """The states by key, least recently used first, with their sizes in bytes."""

    __slots__ = ("currsize", "evictions", "max_bytes", "sizes", "states")

    def __init__(self, max_bytes: int) -> None:
        self.states: OrderedDict[bytes, State] = OrderedDict()
        self.sizes: dict[bytes, int] = {}
        self.currsize = 0
        self.max_bytes = max_bytes
        self.evictions = 0  # keys forgotten before their time

    def get(self, key: bytes) -> State | None:
        state = self.states.get(key)
        if state is not None:
            self.states.move_to_end(key)
        return state

    def put(self, key: bytes, state: State) -> None:
        """Store or re-size `key`'s state (it is the most recent already when stored)."""
        size = _size_of(state)
        old = self.sizes.get(key)
        if old == size and self.states.get(key) is state:
            return
        self.states[key] = state
        self.states.move_to_end(key)
        if old != size:  # most takes keep the size: no second write
            self.sizes[key] = size
            self.currsize += size - (old or 0)
        while self.currsize > self.max_bytes:
            forgotten, _ = self.states.popitem(last=False)
            self.currsize -= self.sizes.pop(forgotten)
            self.evictions += 1


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
        # bound once: compiled, `with self._lock` looks up __enter__ and __exit__ per take
        self._acquire = self._lock.acquire
        self._release = self._lock.release
        self._counters = _Counters(max_bytes)
        self._checks = 0
        self._refused = 0

    def check(self, plan: LimitPlan, ctx: RequestContext) -> LimitOutcome:
        return self.take(plan, plan.derive(ctx), micros(ctx.now))

    def take(self, plan: LimitPlan, keys: tuple[bytes, ...], now_us: int) -> LimitOutcome:
        self._acquire()
        try:
            quotas, allowed = self._take(plan.rules, keys, now_us)
        finally:
            self._release()
        return outcome(plan, quotas, allowed, self._headers)

    async def take_async(
        self, plan: LimitPlan, keys: tuple[bytes, ...], now_us: int
    ) -> LimitOutcome:
        return self.take(plan, keys, now_us)  # no I/O: the lock is held for microseconds

    def peek(self, plan: LimitPlan, keys: tuple[bytes, ...], now_us: int) -> LimitOutcome:
        rules = plan.rules
        with self._lock:
            self._checks += 1
            quotas = [quota(self._state(keys[i], rules[i], now_us), rules[i], now_us)
                      for i in range(len(rules))]  # fmt: skip
            allowed = all([q.available >= 1 for q in quotas])
            self._refused += not allowed
        return outcome(plan, quotas, allowed, self._headers)

    async def peek_async(
        self, plan: LimitPlan, keys: tuple[bytes, ...], now_us: int
    ) -> LimitOutcome:
        return self.peek(plan, keys, now_us)

    def stats(self) -> MemoryStats:
        with self._lock:
            counters = self._counters
            return MemoryStats(
                self._checks,
                self._refused,
                len(counters.states),
                counters.currsize,
                self._max_bytes,
                counters.evictions,
            )

    def _take(
        self, rules: tuple[Rule, ...], keys: tuple[bytes, ...], now: int
    ) -> tuple[list[Quota], bool]:
        """All or nothing: a request one limit refuses takes nothing from the others."""
        # index loops, no generators: compiled, this is most of a limited decision's cost
        self._checks += 1
        states: list[State] = []
        quotas: list[Quota] = []
        admissible = True
        for i in range(len(rules)):
            state = self._state(keys[i], rules[i], now)
            states.append(state)
            settled = quota(state, rules[i], now)
            quotas.append(settled)
            admissible = admissible and settled.available >= 1
        if not admissible:
            self._refused += 1
            return quotas, False
        for i in range(len(rules)):
            admit(states[i], rules[i], now)
            self._counters.put(keys[i], states[i])  # (re-)sized: a log may have grown
            quotas[i] = quotas[i].admitted(rules[i])
        return quotas, True

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
