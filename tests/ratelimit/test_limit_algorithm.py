"""The algorithms against plain reference models, with the clock in the test's hands."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from policyengine.ratelimit.algorithm import (
    MICROS,
    Kind,
    Quota,
    Rule,
    SlidingLog,
    admit,
    micros,
    new_state,
    quota,
)
from policyengine.ratelimit.plan import LimitSpec, rule_of

SUBJECT = (("subject", None),)


def window(count: int, period_us: int) -> Rule:
    return Rule("w", Kind.WINDOW, count, period_us, SUBJECT)


def bucket(count: int, period_us: int, burst: int) -> Rule:
    return rule_of(LimitSpec("b", count, period_us / 1_000_000, burst, SUBJECT, "t:1"))


def run(rule: Rule, times: list[int]) -> list[Quota]:
    """Each request's quota as seen before it; admitted when `available` >= 1."""
    state = new_state(rule)
    seen = []
    for now in times:
        before = quota(state, rule, now)
        if before.available >= 1:
            admit(state, rule, now)
        seen.append(before)
    return seen


def arrivals(draw_gaps: list[int]) -> list[int]:
    now, times = 1_000_000, []
    for gap in draw_gaps:
        now += gap
        times.append(now)
    return times


gaps = st.lists(st.integers(0, 40), min_size=1, max_size=120)


@given(st.integers(1, 6), st.integers(1, 50), gaps)
def test_window_admits_exactly_what_a_naive_log_admits(
    count: int, period: int, draws: list[int]
) -> None:
    times = arrivals(draws)
    admitted: list[int] = []
    for now, seen in zip(times, run(window(count, period), times), strict=True):
        inside = [t for t in admitted if t > now - period]
        assert seen.available == count - len(inside)
        assert seen.wait_us == (min(inside) + period - now if inside else 0)
        if len(inside) < count:
            admitted.append(now)


@given(st.integers(1, 6), st.integers(1, 50), gaps)
def test_no_window_ever_holds_more_than_the_quota(
    count: int, period: int, draws: list[int]
) -> None:
    times = arrivals(draws)
    admitted = [t for t, q in zip(times, run(window(count, period), times), strict=True)
                if q.available >= 1]  # fmt: skip
    for start in admitted:
        assert sum(start <= t < start + period for t in admitted) <= count


def test_n_at_once_after_a_quiet_period_then_one_as_each_leaves() -> None:
    rule = window(5, 10_000_000)
    t0 = 50_000_000
    seen = run(rule, [t0] * 7 + [t0 + 9_999_999, t0 + 10_000_000, t0 + 10_000_000])
    assert [q.available >= 1 for q in seen] == [True] * 5 + [False] * 3 + [True, True]
    assert seen[5].wait_us == 10_000_000
    assert seen[7].wait_us == 1


def test_a_fixed_window_boundary_does_not_double_the_quota() -> None:
    """Fixed windows admit 2N around a boundary; the sliding window never does."""
    rule = window(10, 60_000_000)
    times = [59_000_000 + i for i in range(10)] + [60_000_001 + i for i in range(10)]
    assert sum(q.available >= 1 for q in run(rule, times)) == 10


def test_ten_thousand_per_day_keeps_eight_bytes_per_admitted_request() -> None:
    rule = window(10_000, 86_400 * 1_000_000)
    state = new_state(rule)
    assert isinstance(state, SlidingLog)
    for i in range(12_000):
        now = 1_000_000 + i
        if quota(state, rule, now).available >= 1:
            admit(state, rule, now)
    assert len(state.stamps) == 10_000 and state.stamps.itemsize == 8
    assert quota(state, rule, 2_000_000).available == 0


def test_a_clock_stepping_back_admits_nothing_extra() -> None:
    rule = window(2, 1_000)
    seen = run(rule, [10_000, 10_001, 9_000, 10_500, 11_000, 11_001])
    assert [q.available >= 1 for q in seen] == [True, True, False, False, True, True]


def test_a_changed_count_keeps_the_newest_times() -> None:
    """A policy reload may change N: the log keeps its newest entries, in order."""
    big, small = window(4, 1_000), window(2, 1_000)
    state = new_state(big)
    for now in (100, 200, 300, 400, 1_150):  # the ring has wrapped once
        assert quota(state, big, now).available >= 1
        admit(state, big, now)
    assert quota(state, small, 1_160) == Quota(0, 240)  # 400 leaves the window at 1_400
    assert quota(state, small, 1_300) == Quota(0, 100)
    assert quota(state, small, 1_400).available == 1
    assert quota(state, big, 1_400).available == 3  # and back: still consistent


def reference_bucket(rule: Rule, times: list[int]) -> list[bool]:
    """A token bucket with exact fractional tokens: refilled at 1 per unit, capped."""
    tokens, last, admitted = Fraction(rule.capacity), times[0], []
    for now in times:
        tokens = min(Fraction(rule.capacity), tokens + Fraction(now - last, rule.unit_us))
        last = now
        admitted.append(tokens >= 1)
        if tokens >= 1:
            tokens -= 1
    return admitted


@given(st.integers(1, 6), st.integers(1, 60), st.integers(1, 6), gaps)
def test_bucket_matches_a_token_bucket(
    count: int, period: int, burst: int, draws: list[int]
) -> None:
    rule = bucket(count, period, burst)
    times = arrivals(draws)
    seen = run(rule, times)
    assert [q.available >= 1 for q in seen] == reference_bucket(rule, times)
    for i, q in enumerate(seen):  # a refused request learns exactly how long to wait
        if q.available < 1:
            assert reference_bucket(rule, [*times[:i], times[i] + q.wait_us])[-1]
            assert not reference_bucket(rule, [*times[:i], times[i] + q.wait_us - 1])[-1]


def test_bucket_is_nginx_limit_req_with_nodelay() -> None:
    """`5 per 10s burst 3`: 3 at once, then one every 2 s."""
    rule = bucket(5, 10_000_000, 3)
    assert rule.unit_us == 2_000_000 and rule.window_us == 6_000_000
    seen = run(rule, [0, 0, 0, 0, 1_999_999, 2_000_000, 2_000_000, 4_000_000])
    assert [q.available >= 1 for q in seen] == [True, True, True, False, False, True, False, True]
    assert seen[3].wait_us == 2_000_000


def test_bucket_interval_rounds_up_so_the_rate_is_never_exceeded() -> None:
    assert bucket(3, 10_000_000, 1).unit_us == 3_333_334


def test_admitted_quota_reports_what_is_left() -> None:
    rule = window(3, 100)
    assert Quota(3, 0).admitted(rule) == Quota(2, 100)
    assert Quota(2, 40).admitted(rule) == Quota(1, 40)


@given(st.floats(allow_nan=False, allow_infinity=False, min_value=-1e12, max_value=1e12))
def test_micros_is_round_of_the_product(seconds: float) -> None:
    assert micros(seconds) == round(seconds * MICROS)


# seconds whose product with MICROS is exactly halfway between two integers
TIES = [s for k in range(-200, 200) if (s := (k + 0.5) / MICROS) * MICROS == k + 0.5]
EDGES = [0.0, -0.0, 1.7e9 + 0.25e-6, 1e300, -1e300, 2.0**53, 5e-324]


@pytest.mark.parametrize("seconds", TIES + EDGES)
def test_micros_rounds_ties_to_even_as_round_does(seconds: float) -> None:
    assert len(TIES) > 100
    assert micros(seconds) == round(seconds * MICROS)


@pytest.mark.parametrize("seconds", [math.nan, math.inf, -math.inf])
def test_micros_of_no_number_raises_as_round_does(seconds: float) -> None:
    with pytest.raises((ValueError, OverflowError)) as raised:
        micros(seconds)
    with pytest.raises(type(raised.value)):
        round(seconds * MICROS)
