"""Rate limiting: the limiter protocol the engine calls at step 5 of a decision."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from policyengine.context import RequestContext
from policyengine.tree import LimitSpec


@dataclass(frozen=True, slots=True)
class LimitOutcome:
    allowed: bool
    exceeded: str | None = None  # name of the limit that refused
    retry_after: float = 0.0  # seconds
    headers: Mapping[str, str] = field(default_factory=dict)  # RateLimit, RateLimit-Policy...


class Limiter(Protocol):
    def check(self, limits: tuple[LimitSpec, ...], ctx: RequestContext) -> LimitOutcome: ...

    async def check_async(
        self, limits: tuple[LimitSpec, ...], ctx: RequestContext
    ) -> LimitOutcome: ...


class UnavailableLimiter:
    """Until a store is configured, limited routes fail closed instead of going unlimited."""

    def check(self, limits: tuple[LimitSpec, ...], ctx: RequestContext) -> LimitOutcome:
        raise RuntimeError("no rate-limit store is configured")

    async def check_async(
        self, limits: tuple[LimitSpec, ...], ctx: RequestContext
    ) -> LimitOutcome:
        return self.check(limits, ctx)


def default_limiter() -> Limiter:
    return UnavailableLimiter()
