"""The in-memory store: exact with a controlled clock, all or nothing, thread-safe, bounded."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from policyengine.context import RequestContext
from policyengine.ratelimit import HeaderMode, LimitOutcome, MemoryLimiter
from policyengine.ratelimit.memory import KEY_BYTES, LimitTooLarge
from policyengine.ratelimit.plan import LimitSpec, plan_of
from policyengine.request import Identity, Request

BY_SUBJECT = (("subject", None),)


def limit(name: str, count: int, period: float, burst: int | None = None) -> LimitSpec:
    return LimitSpec(name, count, period, burst, BY_SUBJECT, "t:1")


class Caller:
    """One subject calling through a limiter at times the test chooses."""

    def __init__(self, limiter: MemoryLimiter, subject: str = "alice") -> None:
        self.limiter = limiter
        self.identity = Identity(subject)

    def at(self, now: float, *limits: LimitSpec) -> LimitOutcome:
        ctx = RequestContext(Request("GET", "/", identity=self.identity), (), "", now)
        return self.limiter.check(plan_of(limits), ctx)


def allowed(outcomes: list[LimitOutcome]) -> int:
    return sum(outcome.allowed for outcome in outcomes)


def test_exactly_n_in_any_window_with_a_controlled_clock() -> None:
    quota = limit("q", 5, 10.0)
    caller = Caller(MemoryLimiter())
    assert allowed([caller.at(100.0, quota) for _ in range(9)]) == 5
    refused = caller.at(105.0, quota)
    assert (refused.allowed, refused.exceeded, refused.retry_after) == (False, "q", 5.0)
    assert refused.headers["Retry-After"] == "5"
    assert not caller.at(109.999, quota).allowed
    assert allowed([caller.at(110.0, quota) for _ in range(9)]) == 5


def test_a_request_one_limit_refuses_takes_nothing_from_the_others() -> None:
    tight, loose = limit("tight", 2, 60.0), limit("loose", 5, 60.0)
    caller = Caller(MemoryLimiter())
    outcomes = [caller.at(0.0, tight, loose) for _ in range(6)]
    assert allowed(outcomes) == 2
    assert outcomes[-1].exceeded == "tight"
    assert '"loose";r=3' in outcomes[-1].headers["RateLimit"]
    assert allowed([caller.at(1.0, loose) for _ in range(6)]) == 3  # 2 + 3 = 5


def test_the_limit_with_the_longest_wait_is_reported() -> None:
    short, long = limit("short", 1, 5.0), limit("long", 1, 50.0)
    caller = Caller(MemoryLimiter())
    caller.at(0.0, short, long)
    refused = caller.at(1.0, short, long)
    assert (refused.exceeded, refused.headers["Retry-After"]) == ("long", "49")


def test_retry_after_is_whole_seconds_rounded_up() -> None:
    quota = limit("q", 1, 2.5)
    caller = Caller(MemoryLimiter())
    caller.at(0.0, quota)
    assert caller.at(0.1, quota).headers["Retry-After"] == "3"
    assert caller.at(2.4999, quota).headers["Retry-After"] == "1"


def test_a_burst_limit_refills_at_its_rate() -> None:
    rate = limit("r", 60, 60.0, burst=3)  # one a second, three at once
    caller = Caller(MemoryLimiter())
    assert allowed([caller.at(0.0, rate) for _ in range(5)]) == 3
    assert not caller.at(0.5, rate).allowed
    assert caller.at(1.0, rate).allowed
    assert allowed([caller.at(10.0, rate) for _ in range(5)]) == 3


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        (HeaderMode.IETF, {"RateLimit-Policy": '"q";q=3;w=10', "RateLimit": '"q";r=2;t=10'}),
        (HeaderMode.LEGACY, {"X-RateLimit-Limit": "3", "X-RateLimit-Remaining": "2",
                             "X-RateLimit-Reset": "10"}),
        (HeaderMode.OFF, {}),
    ],
)  # fmt: skip
def test_header_modes_on_an_allowed_request(mode: HeaderMode, expected: dict[str, str]) -> None:
    assert dict(Caller(MemoryLimiter(headers=mode)).at(0.0, limit("q", 3, 10.0)).headers) == (
        expected
    )


def test_retry_after_is_sent_whatever_the_header_mode() -> None:
    caller = Caller(MemoryLimiter(headers=HeaderMode.OFF))
    caller.at(0.0, limit("q", 1, 10.0))
    assert dict(caller.at(4.0, limit("q", 1, 10.0)).headers) == {"Retry-After": "6"}


def test_legacy_headers_describe_the_tightest_limit() -> None:
    caller = Caller(MemoryLimiter(headers=HeaderMode.LEGACY))
    headers = caller.at(0.0, limit("a", 10, 60.0), limit("b", 2, 60.0)).headers
    assert (headers["X-RateLimit-Limit"], headers["X-RateLimit-Remaining"]) == ("2", "1")


def test_an_expired_key_starts_over_and_frees_its_log() -> None:
    quota = limit("q", 1000, 10.0)
    limiter = MemoryLimiter()
    caller = Caller(limiter)
    assert allowed([caller.at(0.0, quota) for _ in range(1000)]) == 1000
    full = limiter.stats().bytes
    assert full > KEY_BYTES + 8 * 1000
    assert caller.at(10.0, quota).allowed
    assert limiter.stats().bytes < KEY_BYTES + 200  # a new state replaced the long log
    assert limiter.stats().keys == 1


def test_threads_together_get_exactly_the_quota() -> None:
    quota = limit("q", 100, 3600.0)
    limiter = MemoryLimiter()
    results: list[bool] = []
    start = threading.Barrier(8)

    def hammer() -> None:
        caller = Caller(limiter, "shared")
        start.wait()
        mine = [caller.at(1.0, quota).allowed for _ in range(50)]
        results.extend(mine)

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 400 and sum(results) == 100


def test_a_limit_too_large_for_the_store_is_an_error_not_unlimited() -> None:
    with pytest.raises(LimitTooLarge, match="`huge`"):
        Caller(MemoryLimiter(max_bytes=1 << 20)).at(0.0, limit("huge", 1_000_000, 86400.0))


def test_memory_stays_bounded_under_a_million_distinct_keys() -> None:
    """A flood of new keys (in a fresh process, to measure its RSS) stays in its budget;
    a key that kept busy through the flood kept its count."""
    max_bytes = 16 * 1024 * 1024
    script = Path(__file__).with_name("flood.py")
    done = subprocess.run([sys.executable, str(script), "1000000", str(max_bytes)],
                          capture_output=True, text=True, timeout=120, check=True)  # fmt: skip
    report = json.loads(done.stdout)
    assert report["bytes"] <= max_bytes
    assert report["keys"] * KEY_BYTES <= max_bytes < (report["keys"] + 1) * (KEY_BYTES + 120)
    assert report["evictions"] == 1_000_001 - report["keys"]
    assert report["hot_refused"] == report["hot_checks"]
    # unbounded, a million keys would take over 400 MB; allocator slack stays under 2x
    assert report["rss_growth"] < 2 * max_bytes
