"""From the quotas of one check to a LimitOutcome and its response headers.

`Retry-After` (whole seconds, rounded up) is on every refusal. The quota headers are a
limiter option: the IETF fields (draft-ietf-httpapi-ratelimit-headers), the legacy
`X-RateLimit-*` trio, or none. IETF lists every limit of the route; `t` is the time until
one more request is available, so on a refusal it equals `Retry-After`. The legacy trio
can describe one limit only: the one that refused, else the one with the least left.
What does not depend on the request (`RateLimit-Policy`, each limit's `"name";r=`) was
made once, with the route's LimitPlan (plan.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from types import MappingProxyType
from typing import Final

from policyengine.ratelimit.algorithm import Quota, whole_seconds
from policyengine.ratelimit.base import LimitOutcome
from policyengine.ratelimit.plan import LimitPlan


class HeaderMode(StrEnum):
    OFF = "off"
    IETF = "ietf"
    LEGACY = "legacy"


ALLOWED: Final = LimitOutcome(True, headers=MappingProxyType({}))
# C statics compiled: each request's mode is compared without looking up the enum
_OFF: Final = HeaderMode.OFF
_IETF: Final = HeaderMode.IETF
_LEGACY: Final = HeaderMode.LEGACY


def outcome(
    plan: LimitPlan, quotas: Sequence[Quota], allowed: bool, mode: HeaderMode
) -> LimitOutcome:
    """`quotas` are after the request when it was admitted, before it when refused."""
    if allowed and mode is _OFF:
        return ALLOWED
    headers = _quota_headers(plan, quotas, mode, allowed)
    if allowed:
        return LimitOutcome(True, headers=headers)
    refused = _longest_wait(quotas)
    wait_us = quotas[refused].wait_us
    headers["Retry-After"] = str(max(1, whole_seconds(wait_us)))
    return LimitOutcome(False, plan.rules[refused].name, wait_us / 1_000_000, headers)


def _longest_wait(quotas: Sequence[Quota]) -> int:
    """The refusing limit that keeps the client waiting longest (the first on a tie)."""
    refusing = [i for i, q in enumerate(quotas) if q.available < 1]
    return max(refusing, key=lambda i: (quotas[i].wait_us, -i))


def _quota_headers(
    plan: LimitPlan, quotas: Sequence[Quota], mode: HeaderMode, allowed: bool
) -> dict[str, str]:
    if mode is _IETF:
        if len(quotas) == 1:  # most routes have one limit: no list to build and join
            q = quotas[0]
            field = f"{plan.heads[0]}{max(0, q.available)};t={whole_seconds(q.wait_us)}"
            return {"RateLimit-Policy": plan.policy, "RateLimit": field}
        fields = []
        for i in range(len(quotas)):
            q = quotas[i]
            fields.append(f"{plan.heads[i]}{max(0, q.available)};t={whole_seconds(q.wait_us)}")
        return {"RateLimit-Policy": plan.policy, "RateLimit": ", ".join(fields)}
    if mode is _LEGACY:
        if allowed:
            i = min(range(len(quotas)), key=lambda i: (quotas[i].available, -quotas[i].wait_us))
        else:
            i = _longest_wait(quotas)
        return {
            "X-RateLimit-Limit": str(plan.rules[i].capacity),
            "X-RateLimit-Remaining": str(max(0, quotas[i].available)),
            "X-RateLimit-Reset": str(whole_seconds(quotas[i].wait_us)),
        }
    return {}
