"""`authn introspect` against a real local RFC 7662 endpoint; and `jwt` beside it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest
from authn_support import AUDIENCE, ISSUER, NOW, IdP, SigningKey, bearer, sign, write

from policyengine import Engine, PolicyError, Request
from policyengine.authn import introspection
from policyengine.decision import Decision, Reason

OPAQUE = "opaque-token-1"


class Clock:
    def __init__(self) -> None:
        self.now = float(NOW)

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def introspect_block(idp: IdP, *lines: str) -> str:
    body = "\n        ".join(
        [
            f'endpoint "{idp.base_url}/introspect"',
            f'client_id "{idp.client_id}"',
            'client_secret env "INTROSPECT_SECRET"',
            'roles claim "scope" string',
            *lines,
        ]
    )
    return f"authn introspect {{\n        {body}\n    }}\n"


ROUTES = """
role viewer
role user inherits viewer
route GET /orders { allow role user }
route GET /public { allow anyone }
"""


Make = Callable[..., Engine]


@pytest.fixture
def make(tmp_path: Path, idp: IdP, clock: Clock, monkeypatch: pytest.MonkeyPatch) -> Make:
    monkeypatch.setenv("INTROSPECT_SECRET", idp.client_secret)

    def build(*lines: str, extra: str = "") -> Engine:
        text = introspect_block(idp, *lines) + extra + ROUTES
        return Engine.from_text(text, directory=str(tmp_path), clock=clock)

    return build


def ask(engine: Engine, token: str = OPAQUE, path: str = "/orders") -> Decision:
    return engine.decide(Request("GET", path, bearer(token)))


def active(**fields: object) -> dict[str, object]:
    return {
        "active": True,
        "sub": "alice",
        "scope": "openid user",
        "exp": NOW + 3600,
        "iss": ISSUER,
        "aud": AUDIENCE,
        **fields,
    }


def test_an_active_token_becomes_an_identity(make: Make, idp: IdP) -> None:
    idp.answers[OPAQUE] = active()
    decision = ask(make())
    assert (decision.allow, decision.subject, decision.roles) == (True, "alice", ("user",))
    assert idp.seen_tokens == [OPAQUE]  # posted as the form field `token`, with Basic auth


def test_an_inactive_token_is_invalid(make: Make, idp: IdP) -> None:
    decision = ask(make())
    assert (decision.status, decision.reason, decision.message) == (
        401,
        Reason.AUTHN_INVALID,
        "token is not active",
    )
    assert decision.response_headers["WWW-Authenticate"] == (
        'Bearer realm="introspect", error="invalid_token", error_description="token is not active"'
    )
    assert OPAQUE not in str(decision.to_dict())
    assert ask(make(), path="/public").status == 401  # presented but invalid, even here


def test_positive_answers_are_cached_until_the_bound_or_exp(
    make: Make, idp: IdP, clock: Clock
) -> None:
    idp.answers[OPAQUE] = active(exp=NOW + 3600)
    engine = make("cache 2m")
    for _ in range(5):
        assert ask(engine).allow
    assert idp.hits["introspect"] == 1
    clock.now += 120
    assert ask(engine).allow
    assert idp.hits["introspect"] == 2
    idp.answers["short"] = active(exp=NOW + 150)  # exp comes before the bound
    assert ask(engine, "short").allow
    clock.now = NOW + 150
    assert ask(engine, "short").reason is Reason.AUTHN_EXPIRED
    assert idp.hits["introspect"] == 4


def test_a_decision_is_reusable_only_while_the_answer_is_cached(
    make: Make, idp: IdP, clock: Clock
) -> None:
    """A decision cache must ask again when this block would: a revoked token is then
    caught no later than the `cache` setting says."""
    idp.answers[OPAQUE] = active(exp=NOW + 3600)
    engine = make("cache 2m")
    assert ask(engine).reuse_until == NOW + 120
    clock.now += 60
    assert ask(engine).reuse_until == NOW + 120  # from the cache: its horizon stays
    idp.answers["short"] = active(exp=NOW + 90)
    assert ask(engine, "short").reuse_until == NOW + 90
    idp.answers["inactive"] = {"active": False}
    assert ask(engine, "inactive").reuse_until == 0.0  # failures are never reused


def test_negative_answers_are_cached_briefly(make: Make, idp: IdP, clock: Clock) -> None:
    engine = make()
    assert ask(engine).status == 401
    assert ask(engine).status == 401
    assert idp.hits["introspect"] == 1
    idp.answers[OPAQUE] = active()  # e.g. a token the IdP had not propagated yet
    clock.now += introspection.NEGATIVE_SECONDS
    assert ask(engine).allow
    assert idp.hits["introspect"] == 2


@pytest.mark.parametrize(
    ("fields", "reason", "message"),
    [
        ({"exp": NOW - 1}, Reason.AUTHN_EXPIRED, "token expired"),
        ({"iss": "https://other.test"}, Reason.AUTHN_INVALID, "token issuer is not accepted"),
        ({"aud": ["billing"]}, Reason.AUTHN_INVALID, "token audience is not accepted"),
        ({"sub": None}, Reason.AUTHN_INVALID, "token has no subject claim `sub`"),
    ],
)
def test_active_answers_are_checked_like_jwt_claims(
    make: Make, idp: IdP, fields: dict[str, object], reason: Reason, message: str
) -> None:
    idp.answers[OPAQUE] = {k: v for k, v in active(**fields).items() if v is not None}
    engine = make(f'issuer "{ISSUER}"', f'audience "{AUDIENCE}"')
    decision = ask(engine)
    assert (decision.status, decision.reason, decision.message) == (401, reason, message)


def test_roles_map_applies_to_introspection(make: Make, idp: IdP) -> None:
    engine = make('roles map { "grp-users": user }')  # beside `roles claim "scope"`
    idp.answers[OPAQUE] = active(scope="openid grp-users")
    assert ask(engine).roles == ("user",)
    idp.answers["t2"] = active(scope="openid user")
    assert ask(engine, "t2").roles == ()  # with a map, only mapped names count


@pytest.mark.parametrize(
    ("setup", "why"),
    [
        (lambda idp: setattr(idp, "delay", 1.0), "timeout"),
        (lambda idp: setattr(idp, "client_secret", "rotated"), "our client credentials refused"),
        (lambda idp: setattr(idp, "introspect_status", 500), "server error"),
        (lambda idp: idp.answers.__setitem__(OPAQUE, {"active": "yes"}), "malformed answer"),
        (lambda idp: idp.answers.__setitem__(OPAQUE, {"sub": "x"}), "no `active`"),
        (
            lambda idp: idp.answers.__setitem__(OPAQUE, b'{"active":false,"active":true}'),
            "duplicate member names: not plain JSON",
        ),
        (
            lambda idp: idp.answers.__setitem__(OPAQUE, b'\xef\xbb\xbf{"active":true}'),
            "a byte order mark: not plain JSON",
        ),
    ],
)
def test_failures_of_the_endpoint_fail_closed_and_are_not_cached(
    make: Make, idp: IdP, setup: Callable[[IdP], object], why: str
) -> None:
    engine = make("timeout 200ms")
    setup(idp)
    decision = ask(engine)
    got = (decision.allow, decision.status, decision.reason)
    assert got == (False, 503, Reason.AUTHN_UNAVAILABLE), why
    assert decision.response_headers["Retry-After"] == "1"  # introspection retries at once
    idp.delay, idp.introspect_status = 0.0, 200
    idp.client_secret, idp.answers[OPAQUE] = "introspect-secret", active()
    assert ask(engine).allow  # nothing of the failure was cached


def test_bad_blocks_are_compile_errors(tmp_path: Path, idp: IdP) -> None:
    text = (
        """
    authn introspect {
        endpoint "http://idp.example.test/introspect"
        client_id "gw"
        client_secret env "UNSET_FOR_THIS_TEST"
        cache 2h
    }
    """
        + ROUTES
    )
    with pytest.raises(PolicyError) as caught:
        Engine.from_text(text, directory=str(tmp_path))
    rendered = caught.value.render()
    assert "`endpoint` must be an https URL" in rendered
    assert "environment variable `UNSET_FOR_THIS_TEST` is not set" in rendered
    assert "`cache` must be between 0s and 3600s" in rendered


# -- jwt and introspect on one route ------------------------------------------------------


def test_jwt_shaped_bearers_go_to_jwt_and_opaque_ones_to_introspect(
    make: Make, idp: IdP, tmp_path: Path, rsa1: SigningKey
) -> None:
    write(tmp_path, "rsa.pem", rsa1.pem())
    jwt_block = f"""
    authn jwt {{
        issuer "{ISSUER}"
        audience "{AUDIENCE}"
        algorithms RS256
        public_key file "rsa.pem"
        roles claim "roles"
    }}
    """
    engine = make(extra=jwt_block)  # introspect is declared first: order does not matter
    idp.answers[OPAQUE] = active(sub="opaque-user")
    assert ask(engine).subject == "opaque-user"
    decision = ask(engine, sign(rsa1, "RS256"))
    assert (decision.allow, decision.subject) == (True, "alice")
    forged = ask(engine, sign(rsa1, "RS256").rsplit(".", 1)[0] + ".c2ln")
    assert forged.message == "token signature is invalid"  # judged by jwt, not sent to the IdP
    assert idp.seen_tokens == [OPAQUE]


def test_decide_async_introspects_off_the_event_loop(make: Make, idp: IdP) -> None:
    idp.answers[OPAQUE] = active()
    engine = make()

    async def run() -> list[Decision]:
        request = Request("GET", "/orders", bearer(OPAQUE))
        first = await engine.decide_async(request)
        return [first, await engine.decide_async(request)]

    assert [d.allow for d in asyncio.run(run())] == [True, True]
    assert idp.hits["introspect"] == 1


def test_a_roles_claim_of_the_wrong_type_is_refused(make: Make, idp: IdP) -> None:
    idp.answers[OPAQUE] = active(scope=["openid", "user"])  # declared `string`
    decision = ask(make())
    assert (decision.status, decision.reason) == (401, Reason.AUTHN_INVALID)
    assert decision.message == "token claim `scope` is not a string"
    assert 'error="invalid_token"' in decision.response_headers["WWW-Authenticate"]
