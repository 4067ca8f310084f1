"""Run by test_limit_memory in a fresh process: N distinct keys into a bounded store.

Prints JSON: how much the process grew, what the store accounted, and whether a key
that stayed busy through the flood kept its count.
"""

from __future__ import annotations

import json
import sys

from policyengine.context import RequestContext
from policyengine.ratelimit import HeaderMode, MemoryLimiter
from policyengine.ratelimit.plan import LimitSpec, plan_of
from policyengine.request import Identity, Request


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096


def main(keys: int, max_bytes: int) -> None:
    limits = (LimitSpec("per_user", 3, 3600.0, None, (("subject", None),), "flood:1"),)
    limiter = MemoryLimiter(max_bytes=max_bytes, headers=HeaderMode.OFF)
    ctx = RequestContext(Request("GET", "/"), (), "", 1_000.0)
    hot = Identity("hot")
    ctx.identity = hot
    for _ in range(3):
        limiter.check(plan_of(limits), ctx)
    before = rss_bytes()
    hot_refused = 0
    for i in range(keys):
        ctx.identity = Identity(f"user-{i}")
        limiter.check(plan_of(limits), ctx)
        if i % 1000 == 0:  # the busy key stays recent, so it is never the one forgotten
            ctx.identity = hot
            hot_refused += not limiter.check(plan_of(limits), ctx).allowed
    stats = limiter.stats()
    print(json.dumps({
        "rss_growth": rss_bytes() - before, "bytes": stats.bytes, "keys": stats.keys,
        "evictions": stats.evictions, "hot_checks": keys // 1000 + (keys % 1000 > 0),
        "hot_refused": hot_refused,
    }))  # fmt: skip


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]))
