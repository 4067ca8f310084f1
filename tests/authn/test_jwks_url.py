"""`jwks url` against a real local HTTP server: caching, rotation, storms, outages."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path

import pytest
from authn_support import AUDIENCE, ISSUER, NOW, IdP, SigningKey, bearer, claims, sign

from policyengine import Engine, Request
from policyengine.authn import jwks
from policyengine.decision import Decision
from policyengine.request import Reason


class Clock:
    def __init__(self) -> None:
        self.now = float(NOW)

    def __call__(self) -> float:
        return self.now


def make_engine(tmp_path: Path, idp: IdP, clock: Clock, path: str = "/jwks") -> Engine:
    text = f"""
    authn jwt {{
        issuer "{ISSUER}"
        audience "{AUDIENCE}"
        algorithms RS256, ES256
        jwks url "{idp.base_url}{path}"
        roles claim "roles"
    }}
    role user
    route GET /orders {{ allow role user }}
    route GET /public {{ allow anyone }}
    """
    return Engine.from_text(text, directory=str(tmp_path), clock=clock)


_serial = itertools.count()


def call(engine: Engine, key: SigningKey, clock: Clock) -> Decision:
    """A fresh token each time (distinct `jti`), so the verified-token cache never answers."""
    payload = claims(iat=int(clock.now), exp=int(clock.now) + 300, jti=f"t{next(_serial)}")
    return engine.decide(Request("GET", "/orders", bearer(sign(key, "RS256", payload))))


@pytest.fixture
def clock() -> Clock:
    return Clock()


def test_fetched_once_then_cached_for_max_age(
    tmp_path: Path, idp: IdP, clock: Clock, rsa1: SigningKey
) -> None:
    idp.jwks = {"keys": [rsa1.jwk()]}
    idp.cache_control = "public, max-age=120"
    engine = make_engine(tmp_path, idp, clock)
    assert idp.hits["jwks"] == 0  # not at load: `check` works offline
    for _ in range(5):
        assert call(engine, rsa1, clock).allow
    assert idp.hits["jwks"] == 1
    clock.now += 119
    assert call(engine, rsa1, clock).allow
    assert idp.hits["jwks"] == 1
    clock.now += 2
    assert call(engine, rsa1, clock).allow
    assert idp.hits["jwks"] == 2


@pytest.mark.parametrize(
    ("cache_control", "fresh_for"),
    [("max-age=5", 60), ("no-store", 60), ("max-age=999999", 86400), (None, 600)],
)
def test_max_age_is_bounded(
    tmp_path: Path,
    idp: IdP,
    clock: Clock,
    rsa1: SigningKey,
    cache_control: str | None,
    fresh_for: int,
) -> None:
    idp.jwks, idp.cache_control = {"keys": [rsa1.jwk()]}, cache_control
    engine = make_engine(tmp_path, idp, clock)
    assert call(engine, rsa1, clock).allow
    clock.now += fresh_for - 1
    assert call(engine, rsa1, clock).allow and idp.hits["jwks"] == 1
    clock.now += 1
    assert call(engine, rsa1, clock).allow and idp.hits["jwks"] == 2


def test_key_rotation_is_picked_up_by_the_unknown_kid(
    tmp_path: Path, idp: IdP, clock: Clock, rsa1: SigningKey, rsa2: SigningKey
) -> None:
    idp.jwks = {"keys": [rsa1.jwk()]}
    engine = make_engine(tmp_path, idp, clock)
    assert call(engine, rsa1, clock).allow
    clock.now += jwks.MIN_FETCH_INTERVAL
    idp.jwks = {"keys": [rsa1.jwk(), rsa2.jwk()]}  # the IdP publishes its next key
    assert call(engine, rsa2, clock).allow
    assert idp.hits["jwks"] == 2
    idp.jwks = {"keys": [rsa2.jwk()]}  # and retires the old one
    clock.now += 601
    assert call(engine, rsa2, clock).allow
    decision = call(engine, rsa1, clock)
    assert (decision.reason, decision.message) == (Reason.AUTHN_INVALID, "token key id is unknown")


def test_made_up_kids_cost_one_fetch_per_interval(
    tmp_path: Path, idp: IdP, clock: Clock, rsa1: SigningKey
) -> None:
    idp.jwks = {"keys": [rsa1.jwk()]}
    engine = make_engine(tmp_path, idp, clock)
    assert call(engine, rsa1, clock).allow
    for n in range(50):
        forged = SigningKey(rsa1.private, f"made-up-{n}")
        assert call(engine, forged, clock).message == "token key id is unknown"
    assert idp.hits["jwks"] == 1  # the first fetch was just now: no refetch within the interval
    clock.now += jwks.MIN_FETCH_INTERVAL
    for n in range(50):
        call(engine, SigningKey(rsa1.private, f"again-{n}"), clock)
    assert idp.hits["jwks"] == 2


def test_last_good_set_is_kept_while_the_idp_is_down(
    tmp_path: Path, idp: IdP, clock: Clock, rsa1: SigningKey
) -> None:
    idp.jwks = {"keys": [rsa1.jwk()]}
    engine = make_engine(tmp_path, idp, clock)
    assert call(engine, rsa1, clock).allow
    idp.jwks_status = 503
    clock.now += 3600  # long past max-age
    assert call(engine, rsa1, clock).allow
    assert idp.hits["jwks"] == 2  # it tried, failed, and kept the old set
    idp.jwks_status, idp.jwks = 200, {"keys": "not a list"}
    clock.now += jwks.MIN_FETCH_INTERVAL
    assert call(engine, rsa1, clock).allow  # a malformed set does not replace a good one


def test_no_key_set_at_all_fails_closed(
    tmp_path: Path, idp: IdP, clock: Clock, rsa1: SigningKey
) -> None:
    idp.jwks_status = 500
    engine = make_engine(tmp_path, idp, clock)
    decision = call(engine, rsa1, clock)
    assert (decision.allow, decision.status, decision.reason) == (
        False,
        503,
        Reason.AUTHN_UNAVAILABLE,
    )
    # the next fetch attempt is MIN_FETCH_INTERVAL away: a client retrying sooner is refused again
    assert decision.response_headers["Retry-After"] == str(int(jwks.MIN_FETCH_INTERVAL))
    clock.now += 4
    assert call(engine, rsa1, clock).response_headers["Retry-After"] == "6"
    clock.now -= 4
    public = engine.decide(Request("GET", "/public"))
    assert public.allow  # a request without a token does not need the IdP
    idp.jwks_status, idp.jwks = 200, {"keys": [rsa1.jwk()]}
    clock.now += jwks.MIN_FETCH_INTERVAL
    assert call(engine, rsa1, clock).allow  # recovers at the next attempt


def test_a_slow_idp_times_out_and_fails_closed(
    tmp_path: Path, idp: IdP, clock: Clock, rsa1: SigningKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(jwks, "FETCH_TIMEOUT", 0.2)
    idp.jwks, idp.delay = {"keys": [rsa1.jwk()]}, 1.0
    engine = make_engine(tmp_path, idp, clock)
    assert call(engine, rsa1, clock).reason == Reason.AUTHN_UNAVAILABLE


def test_decide_async_fetches_off_the_event_loop(
    tmp_path: Path, idp: IdP, clock: Clock, rsa1: SigningKey
) -> None:
    idp.jwks = {"keys": [rsa1.jwk()]}
    engine = make_engine(tmp_path, idp, clock)
    token = sign(rsa1, "RS256", claims())

    async def both() -> list[Decision]:
        request = Request("GET", "/orders", bearer(token))
        return list(
            await asyncio.gather(engine.decide_async(request), engine.decide_async(request))
        )

    assert [d.allow for d in asyncio.run(both())] == [True, True]
    assert idp.hits["jwks"] == 1


def test_redirects_are_not_followed(
    tmp_path: Path, idp: IdP, clock: Clock, rsa1: SigningKey
) -> None:
    idp.jwks = {"keys": [rsa1.jwk()]}
    engine = make_engine(tmp_path, idp, clock, path="/moved")
    assert call(engine, rsa1, clock).status == 503
    assert idp.hits["jwks"] == 0


def test_a_malformed_token_is_refused_on_the_event_loop(
    tmp_path: Path, idp: IdP, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Junk needs no key set: it never costs a worker thread (or a fetch)."""
    engine = make_engine(tmp_path, idp, clock)
    import policyengine.authn.bearer as bearer_module  # both token blocks' async path

    async def no_thread(*args: object, **kwargs: object) -> object:
        raise AssertionError("sent to a worker thread")

    monkeypatch.setattr(bearer_module.asyncio, "to_thread", no_thread)
    request = Request("GET", "/orders", {"Authorization": "Bearer not!token68"})
    decision = asyncio.run(engine.decide_async(request))
    assert (decision.reason, decision.message) == (Reason.AUTHN_INVALID, "bearer token malformed")
    assert idp.hits.get("jwks", 0) == 0
