"""What the engine sees of a limiter: the protocol and the outcome of one check."""

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
    headers: Mapping[str, str] = field(default_factory=dict)  # Retry-After, RateLimit...
    unavailable: bool = False  # refused because the shared store could not be asked


class Limiter(Protocol):
    def check(self, limits: tuple[LimitSpec, ...], ctx: RequestContext) -> LimitOutcome: ...

    async def check_async(
        self, limits: tuple[LimitSpec, ...], ctx: RequestContext
    ) -> LimitOutcome: ...
