"""Rate limits through the Engine: policy text in, 200 then 429 (or 503) out."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from policyengine import Decision, Engine, Identity, Reason, Request
from policyengine.ratelimit import HeaderMode, MemoryLimiter, limiter_from_url
from policyengine.ratelimit.redis import RedisLimiter

if TYPE_CHECKING:
    from conftest import RedisServer  # the fixtures' type; conftest is no importable module

POLICY = """
policy "limits"
role user
limit orders_per_user 3 per 10s by subject
limit per_ip 100 per minute by client_ip burst 2
limit huge 100000000 per day

route POST /orders {
    allow role user
    limit orders_per_user
}
route GET /public {
    allow anyone
    limit orders_per_user, per_ip
}
route GET /admin {
    allow role admin
    limit orders_per_user
}
role admin
route GET /huge {
    allow anyone
    limit huge
}
"""

ALICE = Identity("alice", frozenset({"user"}))


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def post_order(engine: Engine, who: Identity = ALICE) -> Decision:
    return engine.decide(Request("POST", "/orders", identity=who))


def test_allowed_then_429_with_retry_after_and_ratelimit_headers() -> None:
    clock = Clock()
    engine = Engine.from_text(POLICY, clock=clock)
    first = post_order(engine)
    assert first.allow and first.response_headers == {
        "RateLimit-Policy": '"orders_per_user";q=3;w=10',
        "RateLimit": '"orders_per_user";r=2;t=10',
    }
    clock.now += 4
    assert [post_order(engine).status for _ in range(3)] == [200, 200, 429]
    refused = post_order(engine)
    assert refused.to_dict() | {"response_headers": None} == {
        "allow": False, "status": 429, "reason": "ratelimit.exceeded",
        "message": "rate limit `orders_per_user` exceeded", "route": "POST /orders",
        "rule": "inline.policy:9", "subject": "alice", "roles": ["user"],
        "upstream_headers": {}, "response_headers": None, "errors": [],
    }  # fmt: skip
    assert refused.response_headers == {
        "RateLimit-Policy": '"orders_per_user";q=3;w=10',
        "RateLimit": '"orders_per_user";r=0;t=6',
        "Retry-After": "6",
    }
    assert post_order(engine, Identity("bob", frozenset({"user"}))).allow  # bob's own count
    clock.now += 6
    assert post_order(engine).allow


def test_anonymous_callers_are_limited_by_client_ip() -> None:
    engine = Engine.from_text(POLICY, clock=Clock())

    def public(ip: str) -> int:
        return engine.decide(Request("GET", "/public", client_ip=ip)).status

    assert [public("10.0.0.1") for _ in range(3)] == [200, 200, 429]  # burst 2 per IP
    assert public("10.0.0.2") == 200


def test_requests_refused_before_step_5_take_no_quota() -> None:
    engine = Engine.from_text(POLICY, clock=Clock())
    for _ in range(5):
        assert engine.decide(Request("GET", "/admin", identity=ALICE)).status == 403
    assert [post_order(engine).status for _ in range(4)] == [200, 200, 200, 429]


def test_the_header_mode_is_a_limiter_option() -> None:
    engine = Engine.from_text(POLICY, clock=Clock(),
                              limiter=MemoryLimiter(headers=HeaderMode.LEGACY))  # fmt: skip
    assert post_order(engine).response_headers == {
        "X-RateLimit-Limit": "3", "X-RateLimit-Remaining": "2", "X-RateLimit-Reset": "10",
    }  # fmt: skip


def test_a_limit_the_store_cannot_hold_fails_closed() -> None:
    engine = Engine.from_text(POLICY, limiter=MemoryLimiter(max_bytes=1 << 20))
    decision = engine.decide(Request("GET", "/huge"))
    assert (decision.status, decision.reason) == (500, Reason.INTERNAL)


def test_decide_async_counts_in_redis(redis_url: str) -> None:
    engine = Engine.from_text(POLICY, limiter=limiter_from_url(redis_url))

    async def four() -> list[int]:
        request = Request("POST", "/orders", identity=ALICE)
        return [(await engine.decide_async(request)).status for _ in range(4)]

    assert asyncio.run(four()) == [200, 200, 200, 429]
    assert post_order(engine).status == 429  # the sync path reads the same count


def test_an_unreachable_store_is_a_503_with_its_own_reason(own_redis: RedisServer) -> None:
    engine = Engine.from_text(POLICY, limiter=RedisLimiter(own_redis.url, timeout_ms=200))
    assert post_order(engine).allow
    own_redis.stop()
    decision = post_order(engine)
    assert (decision.status, decision.reason) == (503, Reason.RATE_LIMIT_UNAVAILABLE)
    assert decision.response_headers == {"Retry-After": "1"}
    assert (
        "limits: rate-limit store unavailable"
        in engine.explain(Request("POST", "/orders", identity=ALICE)).trace
    )
