"""Which counter a request draws on: key spaces, fallbacks, and nothing secret kept."""

from __future__ import annotations

from typing import Any

import pytest

from policyengine.context import RequestContext
from policyengine.ratelimit.counter_keys import limit_key
from policyengine.ratelimit.plan import LimitSpec, plan_of, rule_of
from policyengine.request import Identity, Request


def spec(name: str = "l", *keys: tuple[str, str | None], burst: int | None = None) -> LimitSpec:
    return LimitSpec(name, 5, 10.0, burst, keys or (("subject", None),), "t:1")


def ctx(identity: Identity | None = None, ip: str | None = "10.0.0.1",
        headers: dict[str, str] | None = None) -> RequestContext:  # fmt: skip
    request = Request("GET", "/x", headers or {}, client_ip=ip, identity=identity)
    return RequestContext(request, ("x",), "", 0.0)


def key(limit: LimitSpec, context: RequestContext) -> bytes:
    return limit_key(rule_of(limit), context)


ALICE = Identity("alice", claims={"org": {"id": 7}, "plan": "gold"}, credential_id="ab12cd34")


def test_every_limit_has_its_own_key_space() -> None:
    context = ctx(ALICE)
    assert key(spec("a"), context) != key(spec("b"), context)
    assert key(spec("a"), context) != key(spec("a", burst=2), context)  # another algorithm


def test_subject_falls_back_to_client_ip_and_never_meets_a_subject_named_like_it() -> None:
    anonymous = key(spec(), ctx(None, ip="10.0.0.1"))
    assert anonymous == key(spec(), ctx(None, ip="10.0.0.1"))
    assert anonymous != key(spec(), ctx(None, ip="10.0.0.2"))
    assert anonymous != key(spec(), ctx(Identity("10.0.0.1"), ip="10.0.0.1"))


def test_ipv6_addresses_are_one_key_however_written() -> None:
    by_ip = spec("l", ("client_ip", None))
    assert key(by_ip, ctx(ip="2001:db8::1")) == key(by_ip, ctx(ip="2001:0db8:0:0::0001"))


@pytest.mark.parametrize(
    ("keys", "same", "other"),
    [
        ((("api_key", None),), ALICE, Identity("alice", credential_id="ffff0000")),
        ((("claims", "org.id"),), ALICE, Identity("bob", claims={"org": {"id": 8}})),
        ((("claims", "plan"),), Identity("x", claims={"plan": "gold"}),
         Identity("x", claims={"plan": ["gold"]})),
    ],
)  # fmt: skip
def test_keys_follow_their_value(keys: tuple[tuple[str, str | None], ...], same: Identity,
                                 other: Identity) -> None:  # fmt: skip
    limit = spec("l", *keys)
    assert key(limit, ctx(ALICE)) == key(limit, ctx(same))
    assert key(limit, ctx(ALICE)) != key(limit, ctx(other))


def test_combined_keys_count_each_combination() -> None:
    limit = spec("l", ("subject", None), ("client_ip", None))
    assert key(limit, ctx(ALICE, "10.0.0.1")) != key(limit, ctx(ALICE, "10.0.0.2"))


def test_requests_missing_the_value_share_one_counter_instead_of_going_unlimited() -> None:
    by_header = spec("l", ("header", "x-tenant"))
    missing = key(by_header, ctx(ALICE))
    assert missing == key(by_header, ctx(Identity("bob")))
    assert missing != key(by_header, ctx(ALICE, headers={"X-Tenant": ""}))
    assert key(spec("l", ("claims", "org.nope")), ctx(ALICE)) == key(
        spec("l", ("claims", "org.nope")), ctx(None)
    )


@pytest.mark.parametrize("value", ["Bearer s3cr3t-token", "x" * 100_000, "\udcff\x00é"])
def test_keys_have_a_fixed_size_and_hold_no_header_value(value: str) -> None:
    made = key(spec("l", ("header", "authorization")), ctx(headers={"Authorization": value}))
    assert len(made) == 16


def test_a_route_naming_a_limit_twice_counts_it_once() -> None:
    a, b = spec("a"), spec("b")
    assert [r.name for r in plan_of((a, b, a)).rules] == ["a", "b"]


def test_an_unknown_key_kind_is_an_error_not_a_shared_counter() -> None:
    with pytest.raises(KeyError):
        key(spec("l", ("cookie", "sid")), ctx())


def claims_of(value: Any) -> Identity:
    return Identity("x", claims={"n": value})


def test_claim_values_of_different_types_do_not_collide() -> None:
    limit = spec("l", ("claims", "n"))
    keys = {key(limit, ctx(claims_of(v))) for v in (1, "1", [1], True, "true", 1.5)}
    assert len(keys) == 6
