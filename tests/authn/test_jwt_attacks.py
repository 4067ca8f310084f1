"""The JWT attack suite: each row is an attack and the 401 (or anonymous) it must get.

The policy is the realistic mix LANGUAGE.md shows: RS256 with a PEM key and HS256
with a secret in one block (the setting where algorithm confusion bites), plus a
JWKS file with a second RSA key and an EC key.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from authn_support import (
    AUDIENCE,
    HS_SECRET,
    ISSUER,
    NOW,
    SigningKey,
    b64,
    claims,
    ec_key,
    ed25519_key,
    forge,
    rsa_key,
    sign,
    write,
)
from cryptography.hazmat.primitives.asymmetric import ec

from policyengine import Engine, Request
from policyengine.request import Reason


@dataclass(frozen=True)
class Keys:
    rsa1: SigningKey  # the PEM key
    rsa2: SigningKey  # in the JWKS
    p256: SigningKey  # in the JWKS
    p384: SigningKey  # not in the policy


@dataclass(frozen=True)
class Attack:
    name: str
    headers: Callable[[Keys], dict[str, str]]
    reason: Reason
    message: str  # a fragment of the decision message
    path: str = "/orders"


def auth(value: str) -> dict[str, str]:
    return {"Authorization": value}


def bearer_of(make: Callable[[Keys], str]) -> Callable[[Keys], dict[str, str]]:
    return lambda k: auth(f"Bearer {make(k)}")


def hs256_with(secret: bytes, header: dict[str, Any], payload: dict[str, Any]) -> str:
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(mac)}"


def tampered(token: str, **changes: Any) -> str:
    header, _, signature = token.split(".")
    return f"{header}.{b64(json.dumps(claims(**changes)).encode())}.{signature}"


def resigned_header(token: str, header: dict[str, Any]) -> str:
    _, payload, signature = token.split(".")
    return f"{b64(json.dumps(header).encode())}.{payload}.{signature}"


ATTACKER = ed25519_key("attacker")
ATTACKER_EC = ec_key(ec.SECP256R1(), "attacker-ec")
ATTACKER_RSA = rsa_key("attacker-rsa")
INVALID, EXPIRED = Reason.AUTHN_INVALID, Reason.AUTHN_EXPIRED

ATTACKS = [
    # -- alg none, in any spelling --------------------------------------------------------
    *(
        Attack(
            f"alg {alg}",
            bearer_of(lambda k, a=alg: forge({"alg": a, "typ": "JWT"}, claims())),
            INVALID,
            "token algorithm is not accepted",
        )
        for alg in ("none", "None", "NONE", "nOnE")
    ),
    Attack(
        "alg none with a signature",
        bearer_of(lambda k: forge({"alg": "none"}, claims(), b"sig")),
        INVALID,
        "algorithm",
    ),
    Attack(
        "alg missing",
        bearer_of(lambda k: forge({"typ": "JWT"}, claims(), b"x")),
        INVALID,
        "algorithm",
    ),
    # -- algorithm confusion ----------------------------------------------------------------
    Attack(
        "HS256 signed with the RSA public key as secret",
        bearer_of(lambda k: hs256_with(k.rsa1.pem(), {"alg": "HS256", "typ": "JWT"}, claims())),
        INVALID,
        "token signature is invalid",
    ),
    Attack(
        "HS256 signed with the RSA public key, JWKS kid",
        bearer_of(lambda k: hs256_with(k.rsa2.pem(), {"alg": "HS256", "kid": "rsa-2"}, claims())),
        INVALID,
        "token signature is invalid",
    ),  # only the secret is tried, never an RSA key
    Attack(
        "RS512 with an allowed key but an algorithm not listed",
        bearer_of(lambda k: sign(k.rsa1, "RS512", kid=False)),
        INVALID,
        "token algorithm is not accepted",
    ),
    Attack(
        "ES256 header over an RSA key's kid",
        bearer_of(
            lambda k: resigned_header(sign(k.rsa2, "RS256"), {"alg": "ES256", "kid": "rsa-2"})
        ),
        INVALID,
        "token key id is unknown",
    ),
    Attack(
        "EdDSA token where no Ed25519 key exists",
        bearer_of(lambda k: sign(ATTACKER, "EdDSA")),
        INVALID,
        "token algorithm is not accepted",
    ),
    # -- keys the attacker brings -----------------------------------------------------------
    Attack(
        "embedded jwk header with the attacker's key",
        bearer_of(
            lambda k: sign(
                ATTACKER_EC, "ES256", headers={"jwk": ATTACKER_EC.jwk("ES256")}, kid=False
            )
        ),
        INVALID,
        "token signature is invalid",
    ),
    Attack(
        "embedded jwk header claiming our kid",
        bearer_of(
            lambda k: sign(
                SigningKey(ATTACKER_EC.private, "p256-1"),
                "ES256",
                headers={"jwk": ATTACKER_EC.jwk("ES256")},
            )
        ),
        INVALID,
        "token signature is invalid",
    ),
    Attack(
        "jku, x5u and x5c headers pointing at the attacker",
        bearer_of(
            lambda k: sign(
                SigningKey(ATTACKER_EC.private, "p256-1"),
                "ES256",
                headers={
                    "jku": "https://attacker.test/jwks",
                    "x5u": "https://attacker.test/c.pem",
                    "x5c": ["MIIB"],
                },
            )
        ),
        INVALID,
        "token signature is invalid",
    ),
    Attack(
        "ES384 token where only ES256 is listed",
        bearer_of(lambda k: sign(k.p384, "ES384")),
        INVALID,
        "token algorithm is not accepted",
    ),
    Attack(
        "wrong kid",
        bearer_of(lambda k: sign(SigningKey(k.p256.private, "p256-9"), "ES256")),
        INVALID,
        "token key id is unknown",
    ),
    Attack(
        "wrong kid, tried against the kid-less PEM key",
        bearer_of(lambda k: sign(SigningKey(k.rsa2.private, "rsa-9"), "RS256")),
        INVALID,
        "token signature is invalid",
    ),
    Attack(
        "our kid, the attacker's signature",
        bearer_of(lambda k: sign(SigningKey(ATTACKER_RSA.private, "rsa-2"), "RS256")),
        INVALID,
        "token signature is invalid",
    ),
    Attack(
        "kid that is not a string",
        bearer_of(lambda k: resigned_header(sign(k.rsa2, "RS256"), {"alg": "RS256", "kid": 7})),
        INVALID,
        "token header is not accepted",
    ),
    Attack(
        "crit with an unknown extension",
        bearer_of(lambda k: sign(k.rsa2, "RS256", headers={"crit": ["exp-ext"], "exp-ext": 1})),
        INVALID,
        "token header is not accepted",
    ),
    Attack(
        "crit naming an extension pyjwt knows (b64)",
        bearer_of(
            lambda k: resigned_header(
                sign(k.rsa2, "RS256"),
                {"alg": "RS256", "kid": "rsa-2", "b64": True, "crit": ["b64"]},
            )
        ),
        INVALID,
        "token header is not accepted",
    ),
    # -- tampering ----------------------------------------------------------------------------
    Attack(
        "payload changed, signature kept",
        bearer_of(lambda k: tampered(sign(k.rsa2, "RS256"), sub="admin")),
        INVALID,
        "token signature is invalid",
    ),
    Attack(
        "signature stripped",
        bearer_of(lambda k: sign(k.rsa2, "RS256").rsplit(".", 1)[0] + "."),
        INVALID,
        "token signature is invalid",
    ),
    Attack(
        "HS256 with a guessed secret",
        bearer_of(lambda k: sign("x" * 32, "HS256")),
        INVALID,
        "token signature is invalid",
    ),
    # -- time and audience ----------------------------------------------------------------
    Attack(
        "expired",
        bearer_of(lambda k: sign(k.rsa2, "RS256", claims(exp=NOW - 1))),
        EXPIRED,
        "token expired",
    ),
    Attack(
        "nbf in the future",
        bearer_of(lambda k: sign(k.rsa2, "RS256", claims(nbf=NOW + 60))),
        INVALID,
        "not valid yet",
    ),
    Attack(
        "iat in the future",
        bearer_of(lambda k: sign(k.rsa2, "RS256", claims(iat=NOW + 60))),
        INVALID,
        "issued in the future",
    ),
    Attack(
        "wrong issuer",
        bearer_of(lambda k: sign(k.rsa2, "RS256", claims(iss=ISSUER + ".evil"))),
        INVALID,
        "issuer",
    ),
    Attack(
        "wrong audience",
        bearer_of(lambda k: sign(k.rsa2, "RS256", claims(aud="billing-api"))),
        INVALID,
        "audience",
    ),
    Attack(
        "audience list without ours",
        bearer_of(lambda k: sign(k.rsa2, "RS256", claims(aud=["billing-api", AUDIENCE + "x"]))),
        INVALID,
        "audience",
    ),
    # -- malformed tokens ---------------------------------------------------------------------
    Attack("bad base64 length", bearer_of(lambda k: "abcde.abcde.abcde"), INVALID, "malformed"),
    Attack(
        "header is not JSON",
        bearer_of(lambda k: f"{b64(b'nope')}.{b64(b'{}')}.c2ln"),
        INVALID,
        "token header is not plain JSON",
    ),
    Attack(
        "header is a JSON list",
        bearer_of(lambda k: f"{b64(b'[]')}.{b64(b'{}')}.c2ln"),
        INVALID,
        "token header is not plain JSON",
    ),
    Attack(
        "payload is not an object",
        bearer_of(lambda k: _signed_raw_payload(k.rsa2, b"[1, 2]")),
        INVALID,
        "token claims set is not plain JSON",
    ),
    Attack(
        "two segments",
        bearer_of(lambda k: sign(k.rsa2, "RS256").rsplit(".", 1)[0]),
        INVALID,
        "malformed",
    ),
    Attack(
        "four segments", bearer_of(lambda k: sign(k.rsa2, "RS256") + ".e30"), INVALID, "malformed"
    ),
    Attack(
        "oversized token",
        bearer_of(lambda k: "a" * 10_000 + "." + "b" * 10_000 + ".c"),
        INVALID,
        "bearer token too large",
    ),
    Attack(
        "characters outside token68",
        bearer_of(lambda k: "abc.d;ef.ghi"),
        INVALID,
        "bearer token malformed",
    ),
    # -- the header itself ----------------------------------------------------------------
    Attack("Bearer with no token", lambda k: auth("Bearer"), INVALID, "bearer token malformed"),
    Attack(
        "Bearer and spaces only", lambda k: auth("Bearer    "), INVALID, "bearer token malformed"
    ),
    Attack(
        "tab after Bearer",
        lambda k: auth(f"Bearer\t{sign(k.rsa2, 'RS256')}"),
        INVALID,
        "bearer token malformed",
    ),
    Attack(
        "token then junk",
        lambda k: auth(f"Bearer {sign(k.rsa2, 'RS256')} junk"),
        INVALID,
        "bearer token malformed",
    ),
    Attack(
        "invalid token on an allow-anyone route",
        bearer_of(lambda k: "abcde.abcde.abcde"),
        INVALID,
        "malformed",
        path="/public",
    ),
    # -- not a bearer credential at all: anonymous, so the protected route asks for one ------
    Attack(
        "Basic scheme",
        lambda k: auth("Basic YWxpY2U6cHc="),
        Reason.AUTHN_MISSING,
        "credentials required",
    ),
    Attack(
        "scheme glued to the token",
        lambda k: auth(f"Bearer{sign(k.rsa2, 'RS256')}"),
        Reason.AUTHN_MISSING,
        "credentials required",
    ),
]


def _signed_raw_payload(key: SigningKey, payload: bytes) -> str:
    import jwt

    return jwt.api_jws.encode(payload, key.private, algorithm="RS256", headers={"kid": key.kid})


@pytest.fixture(scope="module")
def keys(rsa1: SigningKey, rsa2: SigningKey, p256: SigningKey, p384: SigningKey) -> Keys:
    return Keys(rsa1, rsa2, p256, p384)


@pytest.fixture
def engine(tmp_path: Path, keys: Keys, monkeypatch: pytest.MonkeyPatch) -> Engine:
    monkeypatch.setenv("JWT_SECRET", HS_SECRET)
    write(tmp_path, "rsa.pem", keys.rsa1.pem())
    write(tmp_path, "jwks.json", json.dumps({"keys": [keys.rsa2.jwk(), keys.p256.jwk()]}))
    text = f"""
    authn jwt {{
        issuer "{ISSUER}"
        audience "{AUDIENCE}"
        algorithms RS256, HS256, ES256
        public_key file "rsa.pem"
        jwks file "jwks.json"
        secret env "JWT_SECRET"
        roles claim "roles"
    }}
    role user
    route GET /orders {{ allow role user }}
    route GET /public {{ allow anyone }}
    """
    return Engine.from_text(text, directory=str(tmp_path), clock=lambda: NOW)


def test_the_policy_accepts_honest_tokens(engine: Engine, keys: Keys) -> None:
    for token in (
        sign(keys.rsa1, "RS256", kid=False),
        sign(keys.rsa2, "RS256"),
        sign(keys.p256, "ES256"),
        sign(HS_SECRET, "HS256"),
    ):
        for scheme in ("Bearer", "bearer", "BEARER"):
            for value in (f"{scheme} {token}", f"{scheme}   {token}", f"  {scheme} {token} "):
                decision = engine.decide(Request("GET", "/orders", auth(value)))
                assert (decision.allow, decision.subject) == (True, "alice"), value


TWICE = {
    "two Authorization headers, joined by the server": lambda k: auth(
        f"Bearer {sign(k.rsa2, 'RS256')}, Bearer {sign(k.rsa2, 'RS256')}"
    ),
    "two Authorization headers differing in case": lambda k: {
        "Authorization": f"Bearer {sign(k.rsa2, 'RS256')}",
        "authorization": f"Bearer {sign(k.rsa2, 'RS256', claims(sub='eve'))}",
    },
}


@pytest.mark.parametrize("name", TWICE)
def test_a_bearer_sent_twice_is_ambiguous_even_when_both_verify(
    engine: Engine, keys: Keys, name: str
) -> None:
    decision = engine.decide(Request("GET", "/orders", TWICE[name](keys)))
    assert (decision.allow, decision.status, decision.reason) == (False, 400, "authn.ambiguous")
    assert "WWW-Authenticate" not in decision.response_headers  # no token would do


@pytest.mark.parametrize("attack", ATTACKS, ids=lambda a: a.name)
def test_attack_is_refused(engine: Engine, keys: Keys, attack: Attack) -> None:
    headers = attack.headers(keys)
    decision = engine.decide(Request("GET", attack.path, headers))
    assert (decision.allow, decision.status, decision.reason) == (False, 401, attack.reason)
    assert attack.message in decision.message
    challenge = decision.response_headers["WWW-Authenticate"]
    assert challenge.startswith('Bearer realm="jwt"')
    if attack.reason is not Reason.AUTHN_MISSING:
        assert 'error="invalid_token"' in challenge
    # nothing the client sent comes back: no token, no part of one
    sent = json.dumps(decision.to_dict())
    for value in headers.values():
        for part in value.replace(",", " ").split():
            if len(part) > 8:
                assert part not in sent
