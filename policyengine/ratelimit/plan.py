"""What the compiler makes of a route's limits: one LimitPlan, built once per route.

A plan holds everything about a check that does not depend on the request: the rules
(each limit's numbers in whole microseconds), how each rule's key is derived, and the
constant parts of the IETF fields. A check then derives the keys and updates the state.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from policyengine.context import RequestContext
from policyengine.ratelimit.algorithm import MICROS, Kind, Rule, whole_seconds
from policyengine.ratelimit.counter_keys import RuleKey, rule_key_of


@dataclass(frozen=True, slots=True)
class LimitSpec:
    """A named rate limit as declared, with its `by` keys resolved."""

    name: str
    count: int
    period: float
    burst: int | None
    keys: tuple[tuple[str, str | None], ...]  # (kind, arg) from LANGUAGE.md's `by`
    site: str


@dataclass(frozen=True, slots=True)
class LimitPlan:
    """A route's limits as the stores run them."""

    rules: tuple[Rule, ...]  # each name once: a limit named twice counts once
    keys: tuple[RuleKey, ...]
    policy: str  # the IETF RateLimit-Policy field
    heads: tuple[str, ...]  # each rule's `"name";r=` in the RateLimit field
    script_rules: str  # the rules as limits.lua reads them: `|kind,capacity,unit` each

    def derive(self, ctx: RequestContext) -> tuple[bytes, ...]:
        """The counters this request draws on, one per rule."""
        return tuple([rule_key.key(ctx) for rule_key in self.keys])


class Metered:
    """How a decision of a limited route is reused (the sidecar's cache): its limits are
    taken from again, with the same keys, and the rest of the decision stands. `until`
    is that decision's horizon; its own `reuse_until` stays 0.0, so that a cache that
    knows nothing of limits never reuses it without counting. A plain class: mypyc
    builds it natively, on every limited decision."""

    __slots__ = ("keys", "plan", "until")

    def __init__(self, plan: LimitPlan, keys: tuple[bytes, ...], until: float) -> None:
        self.plan: Final = plan
        self.keys: Final = keys  # the caller's counters, one per rule
        self.until: Final = until


def rule_of(spec: LimitSpec) -> Rule:
    period_us = max(1, round(spec.period * MICROS))
    if spec.burst is None:
        return Rule(spec.name, Kind.WINDOW, spec.count, period_us, spec.keys)
    return Rule(spec.name, Kind.BUCKET, spec.burst, -(-period_us // spec.count), spec.keys)


def plan_of(specs: tuple[LimitSpec, ...]) -> LimitPlan:
    unique: dict[str, Rule] = {}
    for spec in specs:
        unique.setdefault(spec.name, rule_of(spec))
    rules = tuple(unique.values())
    policy = ", ".join([f'"{r.name}";q={r.capacity};w={whole_seconds(r.window_us)}' for r in rules])
    return LimitPlan(
        rules,
        tuple([rule_key_of(rule) for rule in rules]),
        policy,
        tuple([f'"{r.name}";r=' for r in rules]),
        "".join([f"|{r.kind.value},{r.capacity},{r.unit_us}" for r in rules]),
    )
