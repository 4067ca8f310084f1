"""The two rate-limit algorithms, pure: a state, a rule and the time in, a quota out.

Times are whole microseconds (ints), so every comparison is exact; the caller owns the
clock. `limits.lua` is the same algorithm for Redis, line for line; the tests run both
against one sequence of times and compare.

Sliding window (`N per D`, exact): a request at `t` is admitted while fewer than N
admitted requests lie in the window `(t - D, t]`. Admitted times only grow, so that
holds exactly when fewer than N requests were ever admitted, or the N-th newest of them
lies at or before `t - D`. The state therefore needs the N newest admission times and
nothing else: a ring of N integers, 8 bytes each, filled as requests are admitted
(`10000 per day` costs at most 80 KB for a caller who used all of it; a caller who made
3 requests costs 24 bytes). Fewer than N times cannot decide every later request
exactly, so this is also the least an exact log can keep (up to the 8 bytes).

Token bucket (`N per D burst B`, nginx `limit_req`): GCRA with emission interval
`T = D / N` (rounded up to the microsecond: never faster than the rule) and room for B
requests at once; the state is one time, the bucket's theoretical arrival time.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass
from enum import Enum
from typing import Final

MICROS = 1_000_000


class Kind(Enum):
    WINDOW = "w"  # N per D, exact
    BUCKET = "b"  # N per D burst B


_WINDOW: Final = Kind.WINDOW  # a C static compiled: no lookup of the enum and its member


@dataclass(frozen=True, slots=True)
class Rule:
    """A limit as the algorithms read it, in whole microseconds."""

    name: str
    kind: Kind
    capacity: int  # requests admitted at once after a quiet period: N, or B with a burst
    unit_us: int  # window: the period D; bucket: the emission interval T
    keys: tuple[tuple[str, str | None], ...]

    @property
    def window_us(self) -> int:
        """The time in which `capacity` requests come back (IETF `w`)."""
        return self.unit_us if self.kind is _WINDOW else self.capacity * self.unit_us


def micros(seconds: float) -> int:
    """`round(seconds * MICROS)`, ties to even, as round() gives it; written out because
    compiled, round() is a call into the interpreter's builtins on every limited request
    (NaN and infinities raise as round() raises: int() raises the same errors)."""
    x = seconds * MICROS
    whole = int(x)  # towards zero; exact
    rest = x - whole  # exact: whole is x without its fraction
    if rest > 0.5 or (rest == 0.5 and whole & 1):
        return whole + 1
    if rest < -0.5 or (rest == -0.5 and whole & 1):
        return whole - 1
    return whole


def whole_seconds(us: int) -> int:
    """Rounded up: a client that waits this long is never early."""
    return -(-us // MICROS)


class Quota:
    """A limit's room for one key at one time. Made twice per limit per check, so a plain
    class that mypyc builds natively (a NamedTuple's or frozen dataclass's __init__ is
    interpreted code: a third of a limited decision)."""

    __slots__ = ("available", "wait_us")

    def __init__(self, available: int, wait_us: int) -> None:
        self.available: Final = available  # requests that would be admitted now
        self.wait_us: Final = wait_us  # until one more becomes available; 0 when full

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Quota):
            return NotImplemented
        return self.available == other.available and self.wait_us == other.wait_us

    def __hash__(self) -> int:
        return hash((self.available, self.wait_us))

    def __repr__(self) -> str:
        return f"Quota({self.available}, {self.wait_us})"

    def admitted(self, rule: Rule) -> Quota:
        """The quota once a request was admitted: one less, and if nothing was pending,
        the one just used comes back after one unit."""
        return Quota(self.available - 1, self.wait_us or rule.unit_us)


class SlidingLog:
    """The newest admission times, at most `capacity`: in order while filling, then a ring
    whose oldest entry sits at `head`."""

    __slots__ = ("expires", "head", "stamps")

    def __init__(self) -> None:
        self.stamps = array("q")
        self.head = 0
        self.expires = 0  # from then on the log admits like an empty one

    def stamp(self, index: int) -> int:
        """The index-th oldest time."""
        return self.stamps[(self.head + index) % len(self.stamps)]

    def fit(self, capacity: int) -> None:
        """Keep the invariant after the limit's count changed (a policy reload)."""
        size = len(self.stamps)
        if size == capacity or (size < capacity and self.head == 0):
            return
        ordered = self.stamps[self.head :] + self.stamps[: self.head]
        self.stamps = ordered[-capacity:]
        self.head = 0


class Bucket:
    __slots__ = ("expires", "tat")

    def __init__(self) -> None:
        self.tat = 0  # theoretical arrival time: the bucket is full from then on
        self.expires = 0


State = SlidingLog | Bucket


def new_state(rule: Rule) -> State:
    return SlidingLog() if rule.kind is _WINDOW else Bucket()


def fits(state: State, rule: Rule) -> bool:
    return isinstance(state, SlidingLog) is (rule.kind is _WINDOW)


def quota(state: State, rule: Rule, now: int) -> Quota:
    if isinstance(state, SlidingLog):
        return _window_quota(state, rule, now)
    return _bucket_quota(state, rule, now)


def admit(state: State, rule: Rule, now: int) -> None:
    """Record an admitted request; call `quota` first (it settles the state)."""
    if isinstance(state, SlidingLog):
        _window_admit(state, rule, now)
    else:
        _bucket_admit(state, rule, now)


def _log_now(log: SlidingLog, now: int) -> int:
    """Never before the newest entry: if the clock steps back, the log waits for it."""
    return max(now, log.stamp(-1)) if log.stamps else now


def _window_quota(log: SlidingLog, rule: Rule, now: int) -> Quota:
    log.fit(rule.capacity)
    now = _log_now(log, now)
    horizon = now - rule.unit_us  # entries at or before it have left the window
    low, high = 0, len(log.stamps)
    while low < high:  # the first entry inside the window
        middle = (low + high) // 2
        if log.stamp(middle) > horizon:
            high = middle
        else:
            low = middle + 1
    inside = len(log.stamps) - low
    wait = log.stamp(low) + rule.unit_us - now if inside else 0
    return Quota(rule.capacity - inside, wait)


def _window_admit(log: SlidingLog, rule: Rule, now: int) -> None:
    now = _log_now(log, now)
    if len(log.stamps) < rule.capacity:
        log.stamps.append(now)
    else:
        log.stamps[log.head] = now
        log.head = (log.head + 1) % rule.capacity
    log.expires = now + rule.unit_us


def _bucket_quota(bucket: Bucket, rule: Rule, now: int) -> Quota:
    tat = max(bucket.tat, now)
    room = now + rule.capacity * rule.unit_us - tat  # in [0, capacity * unit]
    available = room // rule.unit_us
    wait = (available + 1) * rule.unit_us - room if available < rule.capacity else 0
    return Quota(available, wait)


def _bucket_admit(bucket: Bucket, rule: Rule, now: int) -> None:
    bucket.tat = max(bucket.tat, now) + rule.unit_us
    bucket.expires = bucket.tat
