"""What the engine sees of a limiter: the protocol and the outcome of one check."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final, Protocol

from policyengine.context import RequestContext
from policyengine.ratelimit.plan import LimitPlan

_NO_HEADERS: Mapping[str, str] = MappingProxyType({})


class LimitOutcome:
    """One check's answer. A plain class mypyc builds natively: one is made per limited
    decision, and a frozen dataclass's __init__ is interpreted code."""

    __slots__ = ("allowed", "exceeded", "headers", "retry_after", "unavailable")

    def __init__(
        self,
        allowed: bool,
        exceeded: str | None = None,
        retry_after: float = 0.0,
        headers: Mapping[str, str] = _NO_HEADERS,
        unavailable: bool = False,
    ) -> None:
        self.allowed: Final = allowed
        self.exceeded: Final = exceeded  # name of the limit that refused
        self.retry_after: Final = retry_after  # seconds
        self.headers: Final = headers  # Retry-After, RateLimit...
        self.unavailable: Final = unavailable  # the shared store could not be asked

    def _fields(self) -> tuple[object, ...]:
        headers = dict(self.headers)
        return (self.allowed, self.exceeded, self.retry_after, headers, self.unavailable)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LimitOutcome) and self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash((self.allowed, self.exceeded, self.retry_after, self.unavailable))

    def __repr__(self) -> str:
        return f"LimitOutcome{self._fields()!r}"


class Limiter(Protocol):
    """Takes one request from every limit of `plan` at once, or from none. `keys` are
    the request's counters (LimitPlan.derive), `now_us` its time in microseconds."""

    def take(self, plan: LimitPlan, keys: tuple[bytes, ...], now_us: int) -> LimitOutcome: ...

    async def take_async(
        self, plan: LimitPlan, keys: tuple[bytes, ...], now_us: int
    ) -> LimitOutcome: ...

    def peek(self, plan: LimitPlan, keys: tuple[bytes, ...], now_us: int) -> LimitOutcome:
        """Whether `take` would admit, and the quotas before it, taking nothing (bans)."""
        ...

    async def peek_async(
        self, plan: LimitPlan, keys: tuple[bytes, ...], now_us: int
    ) -> LimitOutcome: ...

    def check(self, plan: LimitPlan, ctx: RequestContext) -> LimitOutcome:
        """`take` for one request context."""
        ...
