"""`authn jwt` end to end through Engine.decide: algorithms, key sources, claims, cache."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from authn_support import (
    AUDIENCE,
    HS_SECRET,
    ISSUER,
    NOW,
    SigningKey,
    bearer,
    claims,
    decide,
    sign,
    write,
)

from policyengine import Engine, PolicyError
from policyengine.request import Reason

ROLES = """
role viewer
role user inherits viewer
role manager
route GET /orders { allow role viewer }
route GET /public { allow anyone }
"""


def jwt_policy(*lines: str, algorithms: str = "RS256", audience: str = f'"{AUDIENCE}"') -> str:
    if not any(line.startswith("roles") for line in lines):
        lines = (*lines, 'roles claim "roles"')
    body = "\n    ".join(
        [f'issuer "{ISSUER}"', f"audience {audience}", f"algorithms {algorithms}", *lines]
    )
    return f"authn jwt {{\n    {body}\n}}\n{ROLES}"


def engine(tmp_path: Path, text: str, now: float = NOW) -> Engine:
    return Engine.from_text(text, directory=str(tmp_path), clock=lambda: now)


@pytest.fixture
def secret_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JWT_SECRET", HS_SECRET)


# -- every algorithm with its own key type -------------------------------------------------


@pytest.mark.parametrize("alg", ["HS256", "HS384", "HS512"])
def test_hmac_algorithms_verify_with_the_env_secret(
    tmp_path: Path, secret_env: None, alg: str
) -> None:
    e = engine(tmp_path, jwt_policy('secret env "JWT_SECRET"', algorithms=alg))
    decision = decide(e, bearer(sign(HS_SECRET, alg)))
    assert (decision.allow, decision.subject, decision.roles) == (True, "alice", ("user",))
    assert decide(e, bearer(sign("x" * 64, alg))).reason is Reason.AUTHN_INVALID


@pytest.mark.parametrize(
    ("fixture", "alg"),
    [
        ("rsa1", "RS256"),
        ("rsa1", "RS384"),
        ("rsa1", "RS512"),
        ("rsa1", "PS256"),
        ("p256", "ES256"),
        ("p384", "ES384"),
        ("ed", "EdDSA"),
    ],
)
def test_public_key_algorithms_verify_with_a_pem_file(
    tmp_path: Path, request: pytest.FixtureRequest, fixture: str, alg: str
) -> None:
    key: SigningKey = request.getfixturevalue(fixture)
    write(tmp_path, "idp.pem", key.pem())
    e = engine(tmp_path, jwt_policy('public_key file "idp.pem"', algorithms=alg))
    assert decide(e, bearer(sign(key, alg))).allow
    assert decide(e, bearer(sign(key, alg, claims(sub="bob")))).subject == "bob"


def test_a_certificate_file_serves_as_public_key(tmp_path: Path, rsa1: SigningKey) -> None:
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import NameOID

    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "idp")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(rsa1.public)
        .serial_number(1)
        .not_valid_before(dt.datetime(2020, 1, 1, tzinfo=dt.UTC))
        .not_valid_after(dt.datetime(2040, 1, 1, tzinfo=dt.UTC))
        .sign(rsa1.private, hashes.SHA256())
    )
    write(tmp_path, "idp.crt", cert.public_bytes(serialization.Encoding.PEM))
    e = engine(tmp_path, jwt_policy('public_key file "idp.crt"'))
    assert decide(e, bearer(sign(rsa1, "RS256"))).allow


def test_jwks_file_selects_the_key_by_kid(
    tmp_path: Path, rsa1: SigningKey, rsa2: SigningKey, p256: SigningKey
) -> None:
    jwks = {"keys": [rsa1.jwk("RS256"), rsa2.jwk(), p256.jwk(), {"kty": "oct", "k": "c2VjcmV0"}]}
    write(tmp_path, "jwks.json", json.dumps(jwks))
    e = engine(tmp_path, jwt_policy('jwks file "jwks.json"', algorithms="RS256, PS256, ES256"))
    assert decide(e, bearer(sign(rsa2, "RS256"))).allow
    assert decide(e, bearer(sign(rsa2, "PS256"))).allow  # rsa2's JWK names no alg
    assert decide(e, bearer(sign(p256, "ES256"))).allow
    # rsa1's JWK says alg RS256: the key never verifies PS256, whatever the token says
    assert decide(e, bearer(sign(rsa1, "PS256"))).reason is Reason.AUTHN_INVALID
    # a token without kid is tried against every key of its algorithm
    assert decide(e, bearer(sign(rsa2, "RS256", kid=False))).allow


def test_secret_and_public_key_together_each_verify_their_own_algorithms(
    tmp_path: Path, secret_env: None, rsa1: SigningKey
) -> None:
    write(tmp_path, "idp.pem", rsa1.pem())
    e = engine(
        tmp_path,
        jwt_policy(
            'public_key file "idp.pem"', 'secret env "JWT_SECRET"', algorithms="RS256, HS256"
        ),
    )
    assert decide(e, bearer(sign(rsa1, "RS256"))).allow
    assert decide(e, bearer(sign(HS_SECRET, "HS256"))).allow


# -- claims ------------------------------------------------------------------------------


@pytest.fixture
def hs(tmp_path: Path, secret_env: None) -> Any:
    def make(*lines: str, now: float = NOW) -> Engine:
        return engine(
            tmp_path, jwt_policy('secret env "JWT_SECRET"', *lines, algorithms="HS256"), now
        )

    return make


def token(**overrides: Any) -> dict[str, str]:
    return bearer(sign(HS_SECRET, "HS256", claims(**overrides)))


@pytest.mark.parametrize(
    ("overrides", "reason", "message"),
    [
        ({"exp": NOW}, Reason.AUTHN_EXPIRED, "token expired"),
        ({"exp": None}, Reason.AUTHN_INVALID, "token has no expiry (`exp`)"),
        ({"exp": "tomorrow"}, Reason.AUTHN_INVALID, "token claim `exp` is not a number"),
        ({"nbf": NOW + 5}, Reason.AUTHN_INVALID, "token not valid yet (`nbf`)"),
        ({"iat": NOW + 5}, Reason.AUTHN_INVALID, "token issued in the future (`iat`)"),
        ({"iss": "https://evil.test"}, Reason.AUTHN_INVALID, "token issuer is not accepted"),
        ({"iss": None}, Reason.AUTHN_INVALID, "token issuer is not accepted"),
        ({"aud": "other-api"}, Reason.AUTHN_INVALID, "token audience is not accepted"),
        ({"aud": ["a", "b"]}, Reason.AUTHN_INVALID, "token audience is not accepted"),
        ({"sub": None}, Reason.AUTHN_INVALID, "token has no subject claim `sub`"),
        ({"sub": 42}, Reason.AUTHN_INVALID, "token has no subject claim `sub`"),
    ],
)
def test_claims_are_checked_against_the_engine_clock(
    hs: Any, overrides: dict[str, Any], reason: Reason, message: str
) -> None:
    decision = decide(hs(), token(**overrides))
    assert (decision.status, decision.reason, decision.message) == (401, reason, message)
    challenge = decision.response_headers["WWW-Authenticate"]
    assert challenge == (
        f'Bearer realm="jwt", error="invalid_token", error_description="{message}"'
    )


def test_audience_may_be_a_list_on_either_side(tmp_path: Path, secret_env: None) -> None:
    text = jwt_policy(
        'secret env "JWT_SECRET"', algorithms="HS256", audience='"other", "orders-api"'
    )
    e = engine(tmp_path, text)
    assert decide(e, token(aud=["x", AUDIENCE])).allow
    assert decide(e, token(aud="other")).allow


def test_leeway_accepts_small_clock_skew_and_no_more(hs: Any) -> None:
    strict, lenient = hs(), hs("leeway 30s")
    assert decide(strict, token(exp=NOW - 10)).reason is Reason.AUTHN_EXPIRED
    assert decide(lenient, token(exp=NOW - 10)).allow
    assert decide(lenient, token(nbf=NOW + 20)).allow
    assert decide(lenient, token(exp=NOW - 31)).reason is Reason.AUTHN_EXPIRED


def test_required_claims_may_be_dotted(hs: Any) -> None:
    e = hs('required_claims "tenant", "org.id"')
    assert decide(e, token(tenant="t1", org={"id": 7})).allow
    assert decide(e, token(tenant="t1")).message == "token lacks claim `org.id`"


def test_roles_from_a_nested_claim_keep_only_declared_roles(hs: Any) -> None:
    e = hs('roles claim "realm_access.roles"')
    decision = decide(e, token(roles=None, realm_access={"roles": ["user", "offline_access"]}))
    assert (decision.allow, decision.roles) == (True, ("user",))


def test_roles_from_a_space_separated_scope(hs: Any) -> None:
    e = hs('roles claim "scope" string')
    assert decide(e, token(scope="openid viewer email")).roles == ("viewer",)


def test_roles_map_turns_idp_groups_into_policy_roles(hs: Any) -> None:
    e = hs('roles claim "groups" map { "grp-readers": viewer, "grp-ops": manager }')
    decision = decide(e, token(groups=["grp-readers", "grp-ops", "user"]))
    # with a map only mapped names count: the IdP's `user` is not the policy's `user`
    assert decision.roles == ("manager", "viewer")
    split = hs('roles claim "groups"', 'roles map { "grp-readers": viewer }')
    assert decide(split, token(groups=["grp-readers"])).roles == ("viewer",)


def test_namespaced_claim_names_with_dots_are_matched_whole(hs: Any) -> None:
    e = hs('roles claim "https://example.test/roles"', 'subject claim "https://example.test/uid"')
    decision = decide(
        e, token(**{"https://example.test/roles": ["user"], "https://example.test/uid": "u-7"})
    )
    assert (decision.subject, decision.roles) == ("u-7", ("user",))


def test_roles_claim_of_the_wrong_type_is_invalid(hs: Any) -> None:
    decision = decide(hs('roles claim "roles"'), token(roles={"admin": True}))
    assert decision.reason is Reason.AUTHN_INVALID


def test_claims_reach_conditions(tmp_path: Path, secret_env: None) -> None:
    text = jwt_policy('secret env "JWT_SECRET"', algorithms="HS256").replace(
        "route GET /orders { allow role viewer }",
        "route GET /t/{tenant} { allow when claims.tenant == path.tenant }",
    )
    e = engine(tmp_path, text)
    assert decide(e, token(tenant="acme"), path="/t/acme").allow
    assert decide(e, token(tenant="acme"), path="/t/other").reason is Reason.NO_ALLOW


# -- the verified-token cache ------------------------------------------------------------


def test_cached_token_is_not_verified_again_but_never_outlives_exp(
    tmp_path: Path, secret_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [float(NOW)]
    e = Engine.from_text(
        jwt_policy('secret env "JWT_SECRET"', algorithms="HS256"),
        directory=str(tmp_path),
        clock=lambda: now[0],
    )
    headers = token(exp=NOW + 60)
    assert decide(e, headers).allow

    import policyengine.authn.jwt as jwt_module

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("verified again")

    monkeypatch.setattr(jwt_module._DECODER, "decode_complete", refuse)
    now[0] = NOW + 59
    assert decide(e, headers).allow  # from the cache: no signature check
    now[0] = NOW + 60
    monkeypatch.undo()
    assert decide(e, headers).reason is Reason.AUTHN_EXPIRED


def test_the_cache_knows_a_token_only_as_sent(tmp_path: Path, secret_env: None) -> None:
    """A hit is the token as verified, character for character: a token that only
    starts like a cached one, or differs in its signature, is checked as any other."""
    e = engine(tmp_path, jwt_policy('secret env "JWT_SECRET"', algorithms="HS256"))
    good = sign(HS_SECRET, "HS256", claims())
    assert decide(e, bearer(good)).allow
    assert decide(e, bearer(good)).allow  # the hit
    junk = decide(e, bearer(good + "!"))  # no token68: refused before any decoding
    assert (junk.reason, junk.message) == (Reason.AUTHN_INVALID, "bearer token malformed")
    forged = good[:-2] + ("AA" if not good.endswith("AA") else "BB")
    assert decide(e, bearer(forged)).message == "token signature is invalid"
    twice = decide(e, {"Authorization": f"Bearer {good}, Bearer {good}"})
    assert twice.reason is Reason.AUTHN_AMBIGUOUS


# -- compile errors point at the setting ------------------------------------------------


def compile_error(tmp_path: Path, text: str) -> tuple[list[str], str]:
    with pytest.raises(PolicyError) as caught:
        Engine.from_text(text, directory=str(tmp_path))
    return caught.value.codes, caught.value.render()


@pytest.mark.parametrize(
    ("lines", "algorithms", "code", "fragment"),
    [
        (
            ['secret env "JWT_SECRET"'],
            "HS256, none",
            "compile/jwt-alg-none",
            "algorithm `none` is never accepted",
        ),
        (['secret env "JWT_SECRET"'], "HS256, NONE", "compile/jwt-alg-none", "`none`"),
        (['secret env "JWT_SECRET"'], "HS257", "compile/bad-setting", "unknown JWT algorithm"),
        (
            ['secret env "NOPE_UNSET"'],
            "HS256",
            "compile/missing-env",
            "environment variable `NOPE_UNSET` is not set",
        ),
        (
            ['secret env "SHORT_SECRET"'],
            "HS256",
            "compile/jwt-weak-secret",
            "the secret is 8 bytes; HS256 needs at least 32",
        ),
        (['secret env "JWT_SECRET"'], "RS256", "compile/jwt-unused-key", "lists no HS256"),
        ([], "HS256", "compile/jwt-no-key", '`HS256` needs `secret env "..."`'),
        (
            ['public_key file "rsa.pem"'],
            "ES256",
            "compile/jwt-unused-key",
            "`rsa.pem` verifies none of the listed algorithms",
        ),
        (['public_key file "private.pem"'], "RS256", "compile/jwt-key-file", "holds a private key"),
        (['public_key file "missing.pem"'], "RS256", "compile/jwt-key-file", "cannot read"),
        (
            ['public_key file "rsa.pem"'],
            "RS256, ES256",
            "compile/jwt-no-key",
            "no key verifies `ES256`",
        ),
        (
            ['jwks url "http://idp.example.test/jwks"'],
            "RS256",
            "compile/bad-setting",
            "must be an https URL",
        ),
        (
            ['public_key file "rsa.pem"', 'roles claim "g" map { "x": admin }'],
            "RS256",
            "compile/unknown-role",
            "unknown role `admin`",
        ),
        (
            ['public_key file "rsa.pem"', 'roles map { "x": user }'],
            "RS256",
            "compile/missing-setting",
            "`roles map` needs",
        ),
        (
            ['public_key file "rsa.pem"', "leeway 10m"],
            "RS256",
            "compile/bad-setting",
            "`leeway` is at most 5m",
        ),
        (
            ['public_key file "rsa.pem"', 'subject "sub"'],
            "RS256",
            "compile/bad-setting",
            'like `subject claim "realm_access.roles"`',
        ),
        (
            ['public_key file "rsa.pem"', 'jku "https://x"'],
            "RS256",
            "compile/unknown-setting",
            "unknown setting `jku`",
        ),
    ],
)
def test_bad_jwt_blocks_are_compile_errors(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    rsa1: SigningKey,
    lines: list[str],
    algorithms: str,
    code: str,
    fragment: str,
) -> None:
    from cryptography.hazmat.primitives import serialization

    monkeypatch.setenv("JWT_SECRET", HS_SECRET)
    monkeypatch.setenv("SHORT_SECRET", "12345678")
    monkeypatch.delenv("NOPE_UNSET", raising=False)
    write(tmp_path, "rsa.pem", rsa1.pem())
    write(
        tmp_path,
        "private.pem",
        rsa1.private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
    codes, rendered = compile_error(tmp_path, jwt_policy(*lines, algorithms=algorithms))
    assert code in codes
    assert fragment in rendered
    assert "inline.policy:" in rendered  # points into the policy, with a caret excerpt


def test_issuer_and_audience_are_required(tmp_path: Path) -> None:
    codes, rendered = compile_error(tmp_path, "authn jwt { algorithms RS256 }\n" + ROLES)
    assert codes.count("compile/missing-setting") == 2
    assert "needs `issuer`" in rendered and "needs `audience`" in rendered


def test_weak_rsa_key_is_refused(tmp_path: Path) -> None:
    from authn_support import rsa_key

    write(tmp_path, "weak.pem", rsa_key("weak", bits=1024).pem())
    codes, rendered = compile_error(tmp_path, jwt_policy('public_key file "weak.pem"'))
    assert "compile/jwt-key-file" in codes and "2048 bits" in rendered


def test_each_token_goes_to_the_jwt_block_of_its_issuer(
    tmp_path: Path, secret_env: None, rsa1: SigningKey
) -> None:
    write(tmp_path, "partner.pem", rsa1.pem())
    text = f"""
    authn jwt staff {{
        issuer "{ISSUER}"
        audience "{AUDIENCE}"
        algorithms HS256
        secret env "JWT_SECRET"
    }}
    authn jwt partners {{
        issuer "https://partner-idp.test"
        audience "{AUDIENCE}"
        algorithms RS256
        public_key file "partner.pem"
    }}
    route GET /orders {{ allow when authn == "partners" }}
    """
    e = engine(tmp_path, text)
    partner = sign(rsa1, "RS256", claims(iss="https://partner-idp.test"))
    assert decide(e, bearer(partner)).allow
    staff = decide(e, bearer(sign(HS_SECRET, "HS256")))
    assert (staff.reason, staff.subject) == (Reason.NO_ALLOW, "alice")  # known, not a partner
