"""The Redis store against a real redis-server: the same answers as the memory store,
exact across processes, keys that expire, and failure modes that hold."""

from __future__ import annotations

import asyncio
import multiprocessing
import time
import uuid
from collections.abc import Awaitable
from multiprocessing.synchronize import Barrier
from typing import TYPE_CHECKING

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policyengine.context import RequestContext
from policyengine.ratelimit import LimitOutcome, MemoryLimiter, limiter_from_url
from policyengine.ratelimit.algorithm import micros
from policyengine.ratelimit.plan import LimitSpec, plan_of
from policyengine.ratelimit.redis import RedisLimiter
from policyengine.request import Identity, Request

if TYPE_CHECKING:
    from conftest import RedisServer  # the fixtures' type; conftest is no importable module

BY_SUBJECT = (("subject", None),)


def limit(name: str, count: int, period: float, burst: int | None = None) -> LimitSpec:
    return LimitSpec(name, count, period, burst, BY_SUBJECT, "t:1")


def ctx(subject: str = "alice", now: float = 0.0, headers: dict[str, str] | None = None
        ) -> RequestContext:  # fmt: skip
    request = Request("GET", "/", headers or {}, identity=Identity(subject))
    return RequestContext(request, (), "", now)


def take_async(limiter: RedisLimiter, quota: LimitSpec, context: RequestContext
               ) -> Awaitable[LimitOutcome]:  # fmt: skip
    plan = plan_of((quota,))
    return limiter.take_async(plan, plan.derive(context), micros(context.now))


def burst(limiter: RedisLimiter, n: int, *limits: LimitSpec, subject: str = "alice") -> int:
    return sum(limiter.check(plan_of(limits), ctx(subject)).allowed for _ in range(n))


# -- the same algorithm in Lua and in Python ---------------------------------------------

VARIANTS = [
    limit("w", 3, 10.0), limit("w", 5, 10.0), limit("w", 2, 10.0),  # a reload changes N
    limit("b", 4, 20.0, burst=2), limit("b", 4, 20.0, burst=3),
    limit("x", 1, 30.0),
]  # fmt: skip
steps = st.lists(  # half-second steps: requests land exactly on window edges too
    st.tuples(
        st.integers(0, 12).map(lambda halves: halves * 500),
        st.sets(st.sampled_from(range(len(VARIANTS))), min_size=1),
        st.sampled_from(["alice", "bob"]),
    ),
    min_size=1,
    max_size=60,
)


@settings(max_examples=100, deadline=None)
@given(steps)
def test_lua_and_python_give_the_same_answers(
    redis_server: RedisServer, script: list[tuple[int, set[int], str]]
) -> None:
    redis = RedisLimiter(redis_server.url, prefix=f"t{uuid.uuid4().hex}:", clock="engine")
    memory = MemoryLimiter()
    now = 1_000.0
    try:
        for gap_ms, chosen, subject in script:
            now += gap_ms / 1000
            limits = _one_per_name([VARIANTS[i] for i in sorted(chosen)])
            request = ctx(subject, now)
            assert redis.check(plan_of(limits), request) == memory.check(plan_of(limits), request)
    finally:
        redis.close()


def _one_per_name(specs: list[LimitSpec]) -> tuple[LimitSpec, ...]:
    """A route names each limit once (a reload may have changed its definition)."""
    chosen: dict[str, LimitSpec] = {}
    for spec in specs:
        chosen.setdefault(spec.name, spec)
    return tuple(chosen.values())


# -- with Redis's own clock -------------------------------------------------------------


def test_exactly_n_then_refused_until_the_oldest_leaves(redis_url: str) -> None:
    limiter = RedisLimiter(redis_url)
    quota = limit("q", 3, 2.0)
    assert burst(limiter, 1, quota) == 1
    time.sleep(1.0)
    outcomes = [limiter.check(plan_of((quota,)), ctx()) for _ in range(10)]
    assert sum(o.allowed for o in outcomes) == 2
    refused = outcomes[-1]
    assert refused.exceeded == "q" and 0.5 < refused.retry_after <= 1.0
    assert refused.headers["Retry-After"] == "1"
    time.sleep(refused.retry_after + 0.3)  # the first request has left; the others not yet
    assert burst(limiter, 5, quota) == 1


def test_a_request_one_limit_refuses_takes_nothing_from_the_others(redis_url: str) -> None:
    limiter = RedisLimiter(redis_url)
    tight, loose = limit("tight", 2, 60.0), limit("loose", 5, 60.0)
    assert burst(limiter, 6, tight, loose) == 2
    assert burst(limiter, 6, loose) == 3


def test_keys_expire_with_their_state(redis_url: str, redis_server: RedisServer) -> None:
    limiter = RedisLimiter(redis_url, prefix="exp:")
    assert burst(limiter, 2, limit("w", 5, 0.3), limit("b", 5, 0.3, burst=2)) == 2
    client = redis_server.client()
    keys = sorted(client.keys("exp:*"))
    assert [k.split(b":")[1] for k in keys] == [b"b", b"w"]
    assert all(0 < client.pttl(k) <= 300 for k in keys)
    assert client.strlen(keys[1]) == 8 + 8 * 2  # the head, then 8 bytes per request
    time.sleep(0.4)
    assert client.keys("exp:*") == []
    assert burst(limiter, 6, limit("w", 5, 0.3)) == 5


def test_keys_have_the_prefix_and_no_header_value(
    redis_url: str, redis_server: RedisServer
) -> None:
    by_header = LimitSpec("tenant", 5, 60.0, None, (("header", "authorization"),), "t:1")
    RedisLimiter(redis_url, prefix="{pe}:rl:").check(
        plan_of((by_header,)), ctx(headers={"Authorization": "Bearer top-secret"})
    )
    [key] = redis_server.client().keys("*")
    assert key.startswith(b"{pe}:rl:tenant:") and b"secret" not in key and len(key) < 64


def test_the_script_is_loaded_again_after_a_flush(
    redis_url: str, redis_server: RedisServer
) -> None:
    limiter = RedisLimiter(redis_url)
    assert burst(limiter, 2, limit("q", 5, 60.0)) == 2
    redis_server.client().script_flush()
    assert burst(limiter, 5, limit("q", 5, 60.0)) == 3
    assert limiter.stats().store_errors == 0


def test_the_async_client_counts_in_the_same_place(redis_url: str) -> None:
    limiter = RedisLimiter(redis_url)
    quota = limit("q", 4, 60.0)

    async def three() -> list[LimitOutcome]:
        outcomes = await asyncio.gather(*(take_async(limiter, quota, ctx()) for _ in range(3)))
        await limiter.aclose()
        return list(outcomes)

    assert sum(o.allowed for o in asyncio.run(three())) == 3
    assert sum(o.allowed for o in asyncio.run(three())) == 1  # a new loop, a new client
    assert burst(limiter, 3, quota) == 0


# -- across processes -------------------------------------------------------------------


def hammer(url: str, start: Barrier, tries: int, results: multiprocessing.Queue[int]) -> None:
    limiter = RedisLimiter(url)
    quota = limit("shared", 50, 60.0)
    start.wait()
    results.put(
        sum(limiter.check(plan_of((quota,)), ctx("everyone")).allowed for _ in range(tries))
    )


def test_four_processes_share_one_exact_count(redis_url: str) -> None:
    context = multiprocessing.get_context("fork")
    start, results = context.Barrier(4), context.Queue()
    workers = [context.Process(target=hammer, args=(redis_url, start, 60, results))
               for _ in range(4)]  # fmt: skip
    for worker in workers:
        worker.start()
    counts = [results.get(timeout=60) for _ in workers]
    for worker in workers:
        worker.join(timeout=10)
    assert sum(counts) == 50
    assert all(worker.exitcode == 0 for worker in workers)


# -- when Redis fails -------------------------------------------------------------------


def test_deny_fails_closed_while_redis_is_down_and_recovers(own_redis: RedisServer) -> None:
    limiter = RedisLimiter(own_redis.url, timeout_ms=200, recovery_ms=300)
    quota = limit("q", 2, 60.0)
    assert burst(limiter, 1, quota) == 1
    own_redis.stop()
    down = [limiter.check(plan_of((quota,)), ctx()) for _ in range(5)]
    assert all(not o.allowed and o.unavailable and o.exceeded is None for o in down)
    assert down[0].headers == {"Retry-After": "1"}
    stats = limiter.stats()
    assert stats.store_down and stats.store_errors == 1 and stats.store_skipped == 4
    own_redis.start()  # an empty Redis: no script loaded, no counts
    time.sleep(0.35)
    assert burst(limiter, 4, quota) == 2
    assert not limiter.stats().store_down


def test_allow_fails_open_while_redis_is_down(own_redis: RedisServer) -> None:
    limiter = RedisLimiter(own_redis.url, on_store_error="allow", recovery_ms=0)
    own_redis.stop()
    assert burst(limiter, 5, limit("q", 2, 60.0)) == 5
    assert limiter.stats().store_errors == 5


def test_local_counts_in_memory_while_redis_is_down(own_redis: RedisServer) -> None:
    limiter = RedisLimiter(own_redis.url, on_store_error="local", recovery_ms=300)
    quota = limit("q", 3, 60.0)
    own_redis.stop()
    assert burst(limiter, 5, quota) == 3  # exact, within this process
    local = limiter.stats().local
    assert local is not None and local.keys == 1
    own_redis.start()
    time.sleep(0.35)
    assert burst(limiter, 5, quota) == 3  # Redis again: its own count


async def check_then_close(limiter: RedisLimiter, quota: LimitSpec) -> LimitOutcome:
    try:
        return await take_async(limiter, quota, ctx())
    finally:
        await limiter.aclose()


def test_a_hung_redis_times_out_and_the_async_path_holds_too(own_redis: RedisServer) -> None:
    limiter = RedisLimiter(own_redis.url, timeout_ms=100, recovery_ms=0)
    quota = limit("q", 5, 60.0)
    assert burst(limiter, 1, quota) == 1
    own_redis.pause()
    try:
        started = time.monotonic()
        outcome = limiter.check(plan_of((quota,)), ctx())
        waited = time.monotonic() - started
        async_outcome = asyncio.run(check_then_close(limiter, quota))
    finally:
        own_redis.resume()
    assert outcome.unavailable and async_outcome.unavailable
    assert waited < 2.0  # bounded by the timeout, not by Redis (100 ms configured)
    assert burst(limiter, 1, quota) == 1


def test_limiter_from_url_picks_the_store(redis_url: str) -> None:
    assert isinstance(limiter_from_url(None), MemoryLimiter)
    assert isinstance(limiter_from_url(redis_url), RedisLimiter)
    with pytest.raises(ValueError, match="unsupported rate-limit store `memcached`") as err:
        limiter_from_url("memcached://user:hunter2@host")
    assert "hunter2" not in str(err.value)
    assert "hunter2" not in repr(limiter_from_url("redis://:hunter2@127.0.0.1:1/0"))


def test_each_shared_server_is_the_one_it_is_named_after(
    redis_server: RedisServer, request: pytest.FixtureRequest
) -> None:
    """The `[valkey]` runs really talk to Valkey (a Redis binary under either name
    would make half of this file a copy of the other half)."""
    client = redis_server.client()
    info = client.info("server")
    client.close()
    name = request.node.callspec.params["redis_server"]
    assert ("valkey_version" in info) == (name == "valkey"), info.get("redis_version")
