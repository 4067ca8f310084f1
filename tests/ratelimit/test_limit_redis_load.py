"""The Redis store under concurrency: many checks at once wait their turn, never fail,
and stay exact; a hung Redis still bounds the whole wait."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable
from typing import TYPE_CHECKING

from policyengine import Decision, Engine
from policyengine.context import RequestContext
from policyengine.ratelimit import LimitOutcome
from policyengine.ratelimit.algorithm import micros
from policyengine.ratelimit.batch import MAX_CHECKS
from policyengine.ratelimit.plan import LimitPlan, LimitSpec, plan_of
from policyengine.ratelimit.redis import RedisLimiter
from policyengine.request import Identity, Request

if TYPE_CHECKING:
    from conftest import RedisServer

BY_SUBJECT = (("subject", None),)
ROOMY = plan_of((LimitSpec("roomy", 1_000_000, 1.0, 1_000_000, BY_SUBJECT, "t:1"),))
SHARED = plan_of((LimitSpec("shared", 50, 60.0, None, BY_SUBJECT, "t:2"),))


def ctx(subject: str) -> RequestContext:
    request = Request("GET", "/", identity=Identity(subject))
    context = RequestContext(request, (), "", time.time())
    context.identity = request.identity
    return context


def take_async(limiter: RedisLimiter, plan: LimitPlan, context: RequestContext
               ) -> Awaitable[LimitOutcome]:  # fmt: skip
    return limiter.take_async(plan, plan.derive(context), micros(context.now))


async def at_once(limiter: RedisLimiter, plan: LimitPlan, subjects: list[str]
                  ) -> list[LimitOutcome]:  # fmt: skip
    try:
        return list(await asyncio.gather(*(take_async(limiter, plan, ctx(s)) for s in subjects)))
    finally:
        await limiter.aclose()


def test_a_thousand_concurrent_async_checks_are_all_answered_by_redis(redis_url: str) -> None:
    limiter = RedisLimiter(redis_url, timeout_ms=2000)
    subjects = [f"user-{i}" for i in range(1000)]  # more than MAX_CHECKS: several calls
    assert len(subjects) > 2 * MAX_CHECKS
    outcomes = asyncio.run(at_once(limiter, ROOMY, subjects))
    assert all(o.allowed and not o.unavailable for o in outcomes)
    stats = limiter.stats()
    assert stats.checks == 1000 and stats.store_errors == 0


def test_concurrent_async_checks_on_one_key_admit_exactly_the_limit(redis_url: str) -> None:
    limiter = RedisLimiter(redis_url, timeout_ms=2000)
    outcomes = asyncio.run(at_once(limiter, SHARED, ["everyone"] * 300))
    assert sum(o.allowed for o in outcomes) == 50
    refused = [o for o in outcomes if not o.allowed]
    assert all(o.exceeded == "shared" and not o.unavailable for o in refused)


def test_each_check_gets_its_own_answer_from_a_batch(redis_url: str) -> None:
    """Two keys interleaved in one batch: each key's count is its own."""
    limiter = RedisLimiter(redis_url, timeout_ms=2000)
    subjects = ["a", "b"] * 80
    outcomes = asyncio.run(at_once(limiter, SHARED, subjects))
    for subject in ("a", "b"):
        mine = [o for s, o in zip(subjects, outcomes, strict=True) if s == subject]
        assert sum(o.allowed for o in mine) == 50
        remaining = [o.headers["RateLimit"] for o in mine if o.allowed]
        assert remaining[0].startswith('"shared";r=49;') and '"shared";r=0;' in remaining[-1]


def test_threads_beyond_the_pool_wait_for_a_connection(redis_url: str) -> None:
    limiter = RedisLimiter(redis_url, timeout_ms=2000, pool_size=2)
    outcomes: list[LimitOutcome] = []
    lock = threading.Lock()

    def worker(subject: str) -> None:
        for _ in range(10):
            outcome = limiter.check(SHARED, ctx(subject))
            with lock:
                outcomes.append(outcome)

    threads = [threading.Thread(target=worker, args=("everyone",)) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(outcomes) == 160 and not any(o.unavailable for o in outcomes)
    assert sum(o.allowed for o in outcomes) == 50
    assert limiter.stats().store_errors == 0


def test_a_hung_redis_fails_a_whole_batch_once_within_the_timeout(
    own_redis: RedisServer,
) -> None:
    limiter = RedisLimiter(own_redis.url, timeout_ms=150, recovery_ms=0)
    assert asyncio.run(at_once(limiter, ROOMY, ["warm"]))[0].allowed
    own_redis.pause()
    try:
        started = time.monotonic()
        outcomes = asyncio.run(at_once(limiter, ROOMY, [f"u{i}" for i in range(200)]))
        waited = time.monotonic() - started
    finally:
        own_redis.resume()
    assert all(o.unavailable and not o.allowed for o in outcomes)
    assert limiter.stats().store_errors == 1  # one failed round trip, not 200
    assert waited < 2.0  # bounded by timeout_ms (150 ms), not by Redis


POLICY = """
role user
limit shared 50 per minute by subject
route GET /limited {
    allow role user
    limit shared
}
"""


def test_a_metered_decision_taken_again_concurrently_counts_exactly(redis_url: str) -> None:
    """What the sidecar's cache does with a limited route: decide once, then take again."""
    engine = Engine.from_text(POLICY, limiter=RedisLimiter(redis_url, timeout_ms=2000))
    request = Request("GET", "/limited", identity=Identity("carol", frozenset({"user"})))

    async def run() -> list[Decision]:
        first = await engine.decide_async(request)
        assert first.allow and first.metered is not None
        assert first.reuse_until == 0.0  # a cache that knows nothing of limits keeps out
        again = await asyncio.gather(*(engine.take_again(first) for _ in range(80)))
        await engine.limiter.aclose()  # type: ignore[attr-defined]
        return [first, *again]

    decisions = asyncio.run(run())
    assert sum(d.allow for d in decisions) == 50
    refused = [d for d in decisions if not d.allow]
    assert {(d.status, str(d.reason)) for d in refused} == {(429, "ratelimit.exceeded")}
    assert all(d.subject == "carol" and d.route == "GET /limited" for d in refused)
