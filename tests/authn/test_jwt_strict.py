"""Strict tokens (RFC 8725, RFC 9068): `typ` allowlist, size cap, plain JSON, typed roles.

Every token here is signed with a real RSA key, so each refusal is for the rule under
test and not for a bad signature.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jwt
import pytest
from authn_support import AUDIENCE, ISSUER, NOW, SigningKey, b64, bearer, claims, sign, write

from policyengine import Engine, PolicyError, Request
from policyengine.authn.jose import decode_part
from policyengine.decision import Decision
from policyengine.request import Reason

ROUTES = """
role user
route GET /orders { allow role user }
"""


def policy(*lines: str) -> str:
    body = "\n    ".join(
        [
            f'issuer "{ISSUER}"',
            f'audience "{AUDIENCE}"',
            "algorithms RS256",
            'public_key file "rsa.pem"',
            *lines,
        ]
    )
    if not any(line.startswith("roles") for line in lines):
        body += '\n    roles claim "roles"'
    return f"authn jwt {{\n    {body}\n}}\n{ROUTES}"


@pytest.fixture
def make(tmp_path: Path, rsa1: SigningKey) -> Any:
    write(tmp_path, "rsa.pem", rsa1.pem())

    def build(*lines: str) -> Engine:
        return Engine.from_text(policy(*lines), directory=str(tmp_path), clock=lambda: NOW)

    return build


def ask(engine: Engine, token: str) -> Decision:
    return engine.decide(Request("GET", "/orders", bearer(token)))


def raw_token(key: SigningKey, header: bytes, payload: bytes) -> str:
    """A token with exactly these header and claims bytes, honestly RS256-signed."""
    signing_input = f"{b64(header)}.{b64(payload)}"
    signature = jwt.get_algorithm_by_name("RS256").sign(signing_input.encode(), key.private)
    return f"{signing_input}.{b64(signature)}"


def assert_refused(decision: Decision, message: str) -> None:
    assert (decision.allow, decision.status, decision.reason) == (False, 401, Reason.AUTHN_INVALID)
    assert decision.message == message
    challenge = decision.response_headers["WWW-Authenticate"]
    assert 'error="invalid_token"' in challenge
    assert f'error_description="{message}"' in challenge


HEADER = b'{"alg":"RS256","typ":"JWT"}'
NOT_JSON = "token header is not plain JSON"
PAYLOAD = json.dumps(claims()).encode()


# -- typ ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "typ", ["JWT", "jwt", "at+jwt", "AT+JWT", "application/at+jwt", "Application/JWT", None]
)
def test_default_types_and_no_type_are_accepted(make: Any, rsa1: SigningKey, typ: str) -> None:
    headers = {"typ": typ} if typ is not None else {}
    token = jwt.encode(claims(), rsa1.private, algorithm="RS256", headers=headers)
    if typ is None:  # pyjwt always writes `typ` unless told to leave it out
        token = raw_token(rsa1, b'{"alg":"RS256"}', PAYLOAD)
    assert ask(make(), token).allow


@pytest.mark.parametrize(
    "typ", ["dpop+jwt", "application/dpop+jwt", "JOSE", "secevent+jwt", "at+jwt; x=1", "", 7]
)
def test_other_types_are_refused(make: Any, rsa1: SigningKey, typ: Any) -> None:
    header = json.dumps({"alg": "RS256", "typ": typ}).encode()
    assert_refused(ask(make(), raw_token(rsa1, header, PAYLOAD)), "token type is not accepted")


def test_a_configured_allowlist_replaces_the_default(make: Any, rsa1: SigningKey) -> None:
    engine = make('typ "application/AT+JWT"')
    assert ask(engine, sign(rsa1, "RS256", headers={"typ": "at+jwt"})).allow
    jwt_typed = sign(rsa1, "RS256", headers={"typ": "JWT"})
    assert_refused(ask(engine, jwt_typed), "token type is not accepted")
    assert ask(engine, raw_token(rsa1, b'{"alg":"RS256"}', PAYLOAD)).allow  # no typ: accepted


def test_missing_typ_refuse_needs_a_type(make: Any, rsa1: SigningKey) -> None:
    engine = make('typ "at+jwt"', "missing_typ refuse")
    assert ask(engine, sign(rsa1, "RS256", headers={"typ": "at+jwt"})).allow
    untyped = raw_token(rsa1, b'{"alg":"RS256"}', PAYLOAD)
    assert_refused(ask(engine, untyped), "token has no type (`typ`)")


# -- size -----------------------------------------------------------------------------------


def test_tokens_over_8_kib_are_refused_by_default(make: Any, rsa1: SigningKey) -> None:
    big = sign(rsa1, "RS256", claims(pad="x" * 9000))
    assert 8192 < len(big) < 16 * 1024
    assert_refused(ask(make(), big), "token is larger than 8192 bytes")
    assert ask(make(), sign(rsa1, "RS256", claims(pad="x" * 5000))).allow


def test_the_size_cap_is_configurable(make: Any, rsa1: SigningKey) -> None:
    big = sign(rsa1, "RS256", claims(pad="x" * 9000))
    assert ask(make("max_token_size 16KiB"), big).allow
    small = make("max_token_size 1KiB")
    assert_refused(ask(small, big), "token is larger than 1024 bytes")
    assert ask(small, sign(rsa1, "RS256")).allow


# -- plain JSON -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "payload", "message"),
    [
        (b"\xef\xbb\xbf" + HEADER, PAYLOAD, NOT_JSON),
        (b'{"alg":"RS256","typ":"JWT","typ":"dpop+jwt"}', PAYLOAD, NOT_JSON),
        (b'{"alg":"RS256","kid":"a","kid":"b"}', PAYLOAD, NOT_JSON),
        (b'{"alg":"RS256","typ":"J\xffT"}', PAYLOAD, NOT_JSON),
        (HEADER, b"\xef\xbb\xbf" + PAYLOAD, "token claims set is not plain JSON"),
        (HEADER, PAYLOAD[:-1] + b',"sub":"root"}', "token claims set is not plain JSON"),
        (HEADER, PAYLOAD[:-1] + b',"roles":["admin"]}', "token claims set is not plain JSON"),
        (HEADER, PAYLOAD[:-1] + b',"n":NaN}', "token claims set is not plain JSON"),
    ],
    ids=[
        "header bom",
        "header duplicate typ",
        "header duplicate kid",
        "header bad utf-8",
        "claims bom",
        "claims duplicate sub",
        "claims duplicate roles",
        "claims nan",
    ],
)
def test_parts_that_are_not_plain_json_are_refused(
    make: Any, rsa1: SigningKey, header: bytes, payload: bytes, message: str
) -> None:
    assert_refused(ask(make(), raw_token(rsa1, header, payload)), message)


def test_the_honest_raw_token_is_accepted(make: Any, rsa1: SigningKey) -> None:
    assert ask(make(), raw_token(rsa1, HEADER, PAYLOAD)).allow  # the helper itself is sound


# -- typed roles ----------------------------------------------------------------------------


def test_a_string_where_an_array_is_declared_is_refused(make: Any, rsa1: SigningKey) -> None:
    for declared in ('roles claim "roles"', 'roles claim "roles" array'):
        engine = make(declared)
        assert ask(engine, sign(rsa1, "RS256", claims(roles=["user"]))).allow
        assert_refused(
            ask(engine, sign(rsa1, "RS256", claims(roles="user"))),
            "token claim `roles` is not an array of strings",
        )
        assert_refused(
            ask(engine, sign(rsa1, "RS256", claims(roles=["user", 7]))),
            "token claim `roles` is not an array of strings",
        )


def test_a_declared_string_takes_space_separated_names(make: Any, rsa1: SigningKey) -> None:
    engine = make('roles claim "roles" string')
    assert ask(engine, sign(rsa1, "RS256", claims(roles="openid user"))).roles == ("user",)
    assert_refused(
        ask(engine, sign(rsa1, "RS256", claims(roles=["user"]))),
        "token claim `roles` is not a string",
    )


# -- once per token -------------------------------------------------------------------------


def test_strictness_runs_once_per_token(
    make: Any, rsa1: SigningKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []

    def counting(token: str, index: int) -> dict[str, Any]:
        calls.append(index)
        return decode_part(token, index)

    monkeypatch.setattr("policyengine.authn.jwt.decode_part", counting)
    engine, token = make(), sign(rsa1, "RS256")
    for _ in range(5):
        assert ask(engine, token).allow
    assert calls == [0]  # the header of the first request only; hits read nothing


# -- settings -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('typ "at jwt"', "`at jwt` is not a media type"),
        ("missing_typ maybe", "`missing_typ` is `accept` or `refuse`"),
        ("max_token_size 64KiB", "`max_token_size` must be between 256B and 16KiB"),
        ("max_token_size 10s", "`max_token_size` expects a size"),
        ('roles claim "roles" list', "`roles` expects a claim path"),
        ('roles claim "scope"', "`scope` is a space-separated string, not an array"),
    ],
)
def test_bad_settings_are_compile_errors(make: Any, line: str, message: str) -> None:
    with pytest.raises(PolicyError) as caught:
        make(line)
    rendered = caught.value.render()
    assert "inline.policy:" in rendered and "error[compile/bad-setting]" in rendered
    assert message in rendered
