"""The adversarial corpus through the Python API and through the sidecar's socket.

Tables: corpus_paths.py (path and method confusion), corpus_identity.py (API keys,
identity-header spoofing), corpus_bodies.py (JSON bodies), and the token cases below.
Each row says what it expects and why; a row that fails names both.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from corpus_bodies import BODY_CASES
from corpus_identity import API_KEY_CASES, SPOOFING_CASES, WHITESPACE_KEY_CASES
from corpus_paths import METHOD_CASES, PATH_CASES
from security_support import (
    Case,
    Credentials,
    decide,
    differences,
    forward_auth,
    http_outcome,
    send,
)

from policyengine import Engine

CASES = [*PATH_CASES, *METHOD_CASES, *API_KEY_CASES, *SPOOFING_CASES, *BODY_CASES]
HTTP_CASES = [c for c in CASES if not c.engine_only]


def _ids(case: Case) -> str:
    return case.name


def test_case_names_are_unique() -> None:
    names = [c.name for c in CASES]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_python_api(engine: Engine, case: Case) -> None:
    problems = differences(case, decide(engine, case), over_http=False)
    assert not problems, f"{case.why}: {problems}"


@pytest.mark.parametrize("case", HTTP_CASES, ids=_ids)
def test_forward_auth_over_a_socket(server_port: int, case: Case) -> None:
    reply = forward_auth(server_port, case)
    problems = differences(case, http_outcome(reply), over_http=True)
    assert not problems, f"{case.why}: {problems}"


LEADING_WHITESPACE = [c for c in WHITESPACE_KEY_CASES if "leading" in c.name]
TRAILING_WHITESPACE = [c for c in WHITESPACE_KEY_CASES if "trailing" in c.name]


@pytest.mark.parametrize("case", LEADING_WHITESPACE, ids=_ids)
def test_leading_whitespace_around_a_key_over_http(server_port: int, case: Case) -> None:
    reply = forward_auth(server_port, case)
    assert not differences(case, http_outcome(reply), over_http=True), case.why


@pytest.mark.parametrize("case", TRAILING_WHITESPACE, ids=_ids)
def test_trailing_whitespace_around_a_key_over_http(server_port: int, case: Case) -> None:
    reply = forward_auth(server_port, case)
    assert not differences(case, http_outcome(reply), over_http=True), case.why


@pytest.mark.parametrize("case", WHITESPACE_KEY_CASES, ids=_ids)
def test_whitespace_around_a_key_in_the_python_api(engine: Engine, case: Case) -> None:
    assert not differences(case, decide(engine, case), over_http=False), case.why


def test_identity_headers_never_reach_upstream(engine: Engine, server_port: int) -> None:
    """An anonymous allow sends the identity headers empty, so that Caddy's `copy_headers`
    and Traefik's `authResponseHeaders` overwrite whatever the client sent."""
    case = next(c for c in SPOOFING_CASES if c.name == "identity headers on a public route")
    assert dict(engine.decide(case.request()).upstream_headers) == {}
    reply = forward_auth(server_port, case)
    assert reply.status == 200
    assert (reply.headers.get("x-auth-subject"), reply.headers.get("x-auth-roles")) == ("", "")


def test_two_key_headers_over_http(server_port: int) -> None:
    """Repeated fields are joined (RFC 9110 §5.3): neither key wins by order."""
    case = next(c for c in API_KEY_CASES if c.name == "two keys, names differing in case")
    reply = forward_auth(server_port, case)
    assert (reply.status, reply.reason()) == (400, "authn.ambiguous")


# -- tokens: what tests/authn/test_jwt_attacks.py does not cover -----------------------------

# name, headers, status, reason, why, and the target when it is not /api/items/7
TokenCase = (
    tuple[str, Callable[[Credentials], dict[str, str]], int, str, str]
    | tuple[str, Callable[[Credentials], dict[str, str]], int, str, str, str]
)


def bearer(make: Callable[[Credentials], str]) -> Callable[[Credentials], dict[str, str]]:
    return lambda c: {"Authorization": f"Bearer {make(c)}"}


JWT_CASES: list[TokenCase] = [
    ("honest token", bearer(lambda c: c.token()), 200, "allow", "the baseline"),
    (
        "lower-case scheme",
        lambda c: {"Authorization": f"bearer {c.token()}"},
        200,
        "allow",
        "auth schemes are case-insensitive (RFC 9110 §11.1)",
    ),
    (
        "undeclared role",
        bearer(lambda c: c.token(roles=["superuser"])),
        403,
        "authz.no_allow",
        "roles the policy does not declare grant nothing",
    ),
    (
        "role in another case",
        bearer(lambda c: c.token(roles=["USER"])),
        403,
        "authz.no_allow",
        "role names are exact",
    ),
    (
        "roles as an object",
        bearer(lambda c: c.token(roles={"user": True})),
        401,
        "authn.invalid",
        "a roles claim that is not an array of strings is refused",
    ),
    (
        "roles as a string",
        bearer(lambda c: c.token(roles="user")),
        401,
        "authn.invalid",
        "a string where an array is declared is refused, not split into roles",
    ),
    (
        "typ at+jwt",
        bearer(lambda c: _with_header(c, {"typ": "at+jwt"})),
        200,
        "allow",
        "RFC 9068 access tokens are in the default typ allowlist",
    ),
    (
        "typ dpop+jwt",
        bearer(lambda c: _with_header(c, {"typ": "dpop+jwt"})),
        401,
        "authn.invalid",
        "a DPoP proof signed by the same key is no access token (RFC 8725 §3.11)",
    ),
    (
        "duplicate sub",
        bearer(lambda c: _raw_claims(c, b', "sub": "root"}')),
        401,
        "authn.invalid",
        "parsers disagree on which duplicate member wins: refused (RFC 8725 §3.2)",
    ),
    (
        "token over 8 KiB",
        bearer(lambda c: c.token(pad="x" * 9000)),
        401,
        "authn.invalid",
        "the default token size cap",
    ),
    (
        "scope granted",
        lambda c: {"Authorization": f"Bearer {c.token(scope='reports:read')}"},
        200,
        "allow",
        "the scope the rule names, from a space-separated `scope` claim",
        "/api/reports",
    ),
    (
        "scope missing",
        lambda c: {"Authorization": f"Bearer {c.token(scp=['reports:write'])}"},
        403,
        "authz.insufficient_scope",
        "a token without the scope is 403 insufficient_scope (RFC 6750 §3.1), not an allow",
        "/api/reports",
    ),
    (
        "subject is a number",
        bearer(lambda c: c.token(sub=7)),
        401,
        "authn.invalid",
        "a subject is a non-empty string",
    ),
    (
        "subject missing",
        bearer(lambda c: c.token(sub=None)),
        401,
        "authn.invalid",
        "no subject, no identity",
    ),
    (
        "exp as a string",
        bearer(lambda c: c.token(exp="9999999999")),
        401,
        "authn.invalid",
        "NumericDate is a number (RFC 7519 §2)",
    ),
    (
        "exp as a boolean",
        bearer(lambda c: c.token(exp=True)),
        401,
        "authn.invalid",
        "Python's True is 1: still not a NumericDate",
    ),
    (
        "kid path traversal",
        bearer(lambda c: _with_kid(c, "../../../../dev/null")),
        200,
        "allow",
        "the kid selects among JWKS keys only, never a file: a token our key signed "
        "still verifies, whatever its kid",
    ),
    (
        "JWE compact form",
        bearer(lambda c: "a.b.c.d.e"),
        401,
        "authn.invalid",
        "five segments: encrypted tokens are not accepted",
    ),
    (
        "token in the query",
        lambda c: {},
        401,
        "authn.missing",
        "access_token in the URI is not read (RFC 6750 §2.3 discourages it; it leaks)",
    ),
    (
        "token in a cookie",
        lambda c: {"Cookie": f"access_token={c.token()}"},
        401,
        "authn.missing",
        "cookies are not credentials here: no CSRF through ambient tokens",
    ),
]


def _with_kid(credentials: Credentials, kid: str) -> str:
    import jwt

    token = credentials.token()
    payload = jwt.decode(token, options={"verify_signature": False})
    return jwt.encode(payload, credentials.private_key, algorithm="RS256", headers={"kid": kid})


def _with_header(credentials: Credentials, header: dict[str, str]) -> str:
    import jwt

    payload = jwt.decode(credentials.token(), options={"verify_signature": False})
    return jwt.encode(payload, credentials.private_key, algorithm="RS256", headers=header)


def _raw_claims(credentials: Credentials, tail: bytes) -> str:
    """An honestly signed token whose claims end with `tail` instead of `}`."""
    import jwt

    payload = jwt.decode(credentials.token(), options={"verify_signature": False})
    raw = json.dumps(payload).encode()[:-1] + tail
    return jwt.api_jws.encode(raw, credentials.private_key, algorithm="RS256")


def _token_case(credentials: Credentials, row: TokenCase) -> Case:
    name, headers, status, reason, why = row[:5]
    target = row[5] if len(row) > 5 else "/api/items/7"
    query = f"?access_token={credentials.token()}" if name == "token in the query" else ""
    return Case(name, "GET", target + query, status, reason, why,
                tuple(headers(credentials).items()), subject="tina")  # fmt: skip


@pytest.mark.parametrize("row", JWT_CASES, ids=lambda r: r[0])
def test_token_cases(engine: Engine, credentials: Credentials, server_port: int,
                     row: TokenCase) -> None:  # fmt: skip
    case = _token_case(credentials, row)
    assert not differences(case, decide(engine, case), over_http=False), case.why
    reply = forward_auth(server_port, case)
    assert not differences(case, http_outcome(reply), over_http=True), case.why


def test_the_sidecar_refuses_an_identity_in_decide(server_port: int) -> None:
    """`/v1/decide` takes no identity: only an authn block makes one."""
    body = b'{"method": "GET", "path": "/api/me", "identity": {"subject": "ops"}}'
    reply = send(server_port, "POST", "/v1/decide", (("Content-Type", "application/json"),),
                 body)  # fmt: skip
    assert (reply.status, reply.reason()) == (400, "request.invalid")


def test_the_scope_challenge_reaches_the_gateway(
    credentials: Credentials, server_port: int
) -> None:
    """RFC 6750 §3.1: the 403 names the scope to ask for, through forward-auth too."""
    row = next(r for r in JWT_CASES if r[0] == "scope missing")
    reply = forward_auth(server_port, _token_case(credentials, row))
    assert (reply.status, reply.reason()) == (403, "authz.insufficient_scope")
    assert reply.headers.get("www-authenticate") == (
        'Bearer realm="tokens", error="insufficient_scope", scope="reports:read"'
    )
