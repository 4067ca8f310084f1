"""Bans: `ban NAME after N failures per D by KEYS for B`, run on the limiters' own logs.

A ban is two limits the stores already count exactly (memory, bounded; Redis, shared):

- its failures, `N - 1 per D`: each failure (a decision with a status the ban counts)
  is taken from it; the N-th failure in a window finds it full, which starts the ban.
  A ban counting one failure (`after 1 failures`) has no such limit: a failure bans.
- its marker, `1 per B`: starting a ban takes the marker, which then stays taken for B
  and frees itself, so a ban ends by itself and leaves no state behind.

Before anything else of a request is read (its credentials above all), every ban of
its route peeks at its marker (`Limiter.peek`, which takes nothing): a taken marker is a
403 `abuse.banned` with the time the marker has left. Rule names carry a `ban:` prefix,
which no limit's name can have, so bans and limits never share a counter.
"""

from __future__ import annotations

from dataclasses import dataclass

from policyengine.context import RequestContext
from policyengine.ratelimit.base import LimitOutcome
from policyengine.ratelimit.plan import LimitPlan, LimitSpec, plan_of

MARKER_PREFIX = "ban:"  # a limit's name is a NAME: it never holds a `:`


@dataclass(frozen=True, slots=True)
class BanSpec:
    """A named ban as declared, with its `by` keys resolved."""

    name: str
    count: int  # failures in `period` that start a ban
    period: float
    keys: tuple[tuple[str, str | None], ...]
    ban: float  # seconds a ban lasts
    statuses: frozenset[int]  # the decisions' statuses that count as failures
    site: str


@dataclass(frozen=True, slots=True)
class Ban:
    """One ban as the stores run it."""

    name: str
    statuses: frozenset[int]
    marker: LimitPlan  # `1 per B`: taken while the ban lasts
    failures: LimitPlan | None  # `N - 1 per D`; None when the first failure bans

    def starts(self, failed: LimitOutcome) -> bool:
        """Whether the failure just taken from `failures` was the N-th of its window.
        An unavailable store starts no ban: the failure goes uncounted."""
        return not failed.allowed and not failed.unavailable


@dataclass(frozen=True, slots=True)
class BanPlan:
    """A route's bans: their markers, peeked at together before authentication."""

    bans: tuple[Ban, ...]
    markers: LimitPlan
    statuses: frozenset[int]  # every status one of the bans counts

    def counting(self, status: int) -> tuple[Ban, ...]:
        """The bans a decision with this status is a failure for."""
        if status not in self.statuses:
            return ()
        return tuple([ban for ban in self.bans if status in ban.statuses])

    def marker_keys(self, ctx: RequestContext) -> tuple[bytes, ...]:
        return self.markers.derive(ctx)


def ban_name(rule_name: str) -> str:
    """The ban's own name, from the name of its marker's rule."""
    return rule_name.removeprefix(MARKER_PREFIX)


def ban_of(spec: BanSpec) -> Ban:
    failures = None
    if spec.count > 1:
        name = f"{MARKER_PREFIX}{spec.name}:failures"
        failures = plan_of((LimitSpec(name, spec.count - 1, spec.period, None, spec.keys,
                                      spec.site),))  # fmt: skip
    return Ban(spec.name, spec.statuses, plan_of((_marker_spec(spec),)), failures)


def ban_plan_of(specs: tuple[BanSpec, ...]) -> BanPlan:
    unique = tuple({spec.name: spec for spec in specs}.values())  # a ban named twice: once
    bans = tuple([ban_of(spec) for spec in unique])
    markers = plan_of(tuple([_marker_spec(spec) for spec in unique]))
    statuses = frozenset([status for ban in bans for status in ban.statuses])
    return BanPlan(bans, markers, statuses)


def _marker_spec(spec: BanSpec) -> LimitSpec:
    return LimitSpec(MARKER_PREFIX + spec.name, 1, spec.ban, None, spec.keys, spec.site)
