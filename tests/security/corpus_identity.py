"""API keys and identity: who the caller is comes from a verified credential, nothing else.

JWT attacks live in tests/authn/test_jwt_attacks.py (alg none in every spelling, HS/RS
confusion, embedded keys, kid games, crit, tampering, claims, malformed tokens); the
cases here that involve tokens are the ones that suite does not cover, built per test
from the session's key (test_adversarial.py, JWT_CASES).
"""

from __future__ import annotations

from security_support import Case

ALICE = ("X-API-Key", "key-alice")

API_KEY_CASES = [
    Case(
        "key authenticates",
        "GET",
        "/api/items/7",
        200,
        "allow",
        "the baseline",
        headers=(ALICE,),
        subject="alice",
    ),
    # Header names are case-insensitive (RFC 9110 §5.1): every spelling is the same key.
    *(
        Case(
            f"header name {name}",
            "GET",
            "/api/items/7",
            200,
            "allow",
            "field names are case-insensitive (RFC 9110 §5.1)",
            headers=((name, "key-alice"),),
            subject="alice",
        )
        for name in ("x-api-key", "X-API-KEY", "X-Api-Key")
    ),
    Case(
        "key value in another case",
        "GET",
        "/api/items/7",
        401,
        "authn.invalid",
        "keys are secrets compared exactly: `KEY-ALICE` is another key",
        headers=(("X-API-Key", "KEY-ALICE"),),
    ),
    Case(
        "key with an inner space",
        "GET",
        "/api/items/7",
        401,
        "authn.invalid",
        "only surrounding whitespace is not part of a field value",
        headers=(("X-API-Key", "key -alice"),),
    ),
    Case(
        "empty key",
        "GET",
        "/api/items/7",
        401,
        "authn.invalid",
        "presented but empty: a 401, never an anonymous request",
        headers=(("X-API-Key", ""),),
    ),
    Case(
        "empty key on a public route",
        "GET",
        "/public",
        401,
        "authn.invalid",
        "a presented credential is checked even where anyone may call",
        headers=(("X-API-Key", ""),),
    ),
    Case(
        "unknown key on a public route",
        "GET",
        "/public",
        401,
        "authn.invalid",
        "a wrong credential is never quietly ignored",
        headers=(("X-API-Key", "guess"),),
    ),
    Case(
        "expired key",
        "GET",
        "/api/items/7",
        401,
        "authn.expired",
        "`expires` is enforced",
        headers=(("X-API-Key", "key-old"),),
    ),
    Case(
        "two keys, names differing in case",
        "GET",
        "/api/items/7",
        400,
        "authn.ambiguous",
        "joined as one field (RFC 9110 §5.3): no key wins by order",
        headers=(("X-API-Key", "key-alice"), ("x-api-key", "key-ops")),
        engine_only=True,
    ),  # over HTTP: test_two_key_headers_over_http
    Case(
        "key in the query only",
        "GET",
        "/api/items/7?X-API-Key=key-alice",
        401,
        "authn.missing",
        "this block reads the header only; the query is not a credential",
    ),
    Case(
        "key in header and query",
        "GET",
        "/api/admin/x?api_key=key-ops",
        403,
        "authz.no_allow",
        "the header's key (alice) decides; ops's key in the query is ignored",
        headers=(ALICE,),
    ),
    Case(
        "bad header key, good query key",
        "GET",
        "/api/admin/x?api_key=key-ops",
        401,
        "authn.invalid",
        "the query never rescues a bad header credential",
        headers=(("X-API-Key", "nope"),),
    ),
    Case(
        "key with a NUL",
        "GET",
        "/api/items/7",
        401,
        "authn.invalid",
        "hashed as sent; no truncation at NUL",
        headers=(("X-API-Key", "key-alice\x00x"),),
        http_status=400,
        http_reason="request.malformed",
    ),
    Case(
        "huge key",
        "GET",
        "/api/items/7",
        401,
        "authn.invalid",
        "hashed, never stored; bounded by the server's header limit",
        headers=(("X-API-Key", "k" * 16000),),
    ),
    Case(
        "API key in Authorization",
        "GET",
        "/api/items/7",
        401,
        "authn.invalid",
        "a bearer token that is no JWT is refused, not taken as an API key",
        headers=(("Authorization", "Bearer key-alice"),),
    ),
]

# Surrounding whitespace is not part of a field value (RFC 9110 §5.5). The sidecar's HTTP
# parser strips it; the Python API and /v1/decide hand the engine the value as given.
WHITESPACE_KEY_CASES = [
    Case(
        f"key with {label}",
        "GET",
        "/api/items/7",
        200,
        "allow",
        "RFC 9110 §5.5: leading and trailing whitespace is not part of the value",
        headers=(("X-API-Key", value),),
        subject="alice",
    )
    for label, value in (
        ("leading space", " key-alice"),
        ("trailing space", "key-alice  "),
        ("leading tab", "\tkey-alice"),
        ("trailing tab", "key-alice\t"),
    )
]

SPOOFING_CASES = [
    Case(
        "subject header from the client",
        "GET",
        "/api/me",
        401,
        "authn.missing",
        "X-Auth-Subject is what we send upstream; a client sending it is anonymous",
        headers=(("X-Auth-Subject", "ops"), ("X-Auth-Roles", "admin")),
    ),
    Case(
        "roles header from the client",
        "GET",
        "/api/admin/users",
        401,
        "authn.missing",
        "roles come from a verified credential only",
        headers=(("X-Auth-Roles", "admin"),),
    ),
    Case(
        "roles header beside a real key",
        "GET",
        "/api/admin/users",
        403,
        "authz.no_allow",
        "alice is a user, whatever X-Auth-Roles says",
        headers=(ALICE, ("X-Auth-Roles", "admin")),
    ),
    Case(
        "subject header beside a real key",
        "GET",
        "/api/me",
        200,
        "allow",
        "the identity is alice's key's, never the header's",
        headers=(ALICE, ("X-Auth-Subject", "ops")),
        subject="alice",
    ),
    Case(
        "identity headers on a public route",
        "GET",
        "/public",
        200,
        "allow",
        "allowed as anonymous: no subject reaches the decision or the upstream",
        headers=(("X-Auth-Subject", "ops"), ("X-Auth-Roles", "admin")),
    ),
    Case(
        "forwarded user headers",
        "GET",
        "/api/me",
        401,
        "authn.missing",
        "other proxies' identity headers mean nothing here",
        headers=(("X-Forwarded-User", "ops"), ("X-Remote-User", "ops"), ("Remote-User", "ops")),
    ),
    Case(
        "tenant claim from a header",
        "GET",
        "/tenants/evil/data",
        403,
        "authz.no_allow",
        "claims come from the credential: alice's tenant is acme",
        headers=(ALICE, ("X-Tenant", "evil"), ("X-Auth-Claims", '{"tenant":"evil"}')),
    ),
    Case(
        "client address from X-Forwarded-For",
        "GET",
        "/internal",
        403,
        "authz.denied",
        "the engine never reads forwarded headers: the address it is given decides",
        headers=(
            ("X-Forwarded-For", "10.0.0.1"),
            ("X-Real-IP", "10.0.0.1"),
            ("Forwarded", "for=10.0.0.1"),
        ),
        engine_only=True,
    ),
]
