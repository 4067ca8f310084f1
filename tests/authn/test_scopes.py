"""OAuth2 scopes: `allow scope`, read from `scope` or `scp` of real signed tokens and of
introspection answers; a missing scope is 403 with the RFC 6750 §3.1 challenge."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from authn_support import AUDIENCE, ISSUER, NOW, IdP, SigningKey, bearer, claims, sign, write

from policyengine import Engine, PolicyError, Request
from policyengine.decision import Decision
from policyengine.request import Reason

ROUTES = """
role user
role admin
route GET /orders { allow scope "orders:read" }
route POST /orders { allow role user scope "orders:write" }
route DELETE /orders/{id} {
    allow role admin
    allow role user scope "orders:write", "orders:delete" when path.id != "0"
}
"""


@pytest.fixture
def engine(tmp_path: Path, rsa1: SigningKey) -> Engine:
    write(tmp_path, "rsa.pem", rsa1.pem())
    text = f"""
    authn jwt idp {{
        issuer "{ISSUER}"
        audience "{AUDIENCE}"
        algorithms RS256
        public_key file "rsa.pem"
        roles claim "roles"
    }}
    {ROUTES}"""
    return Engine.from_text(text, directory=str(tmp_path), clock=lambda: NOW)


def call(engine: Engine, key: SigningKey, method: str, path: str, **changes: Any) -> Decision:
    token = sign(key, "RS256", claims(**changes))
    return engine.decide(Request(method, path, bearer(token)))


def assert_insufficient(decision: Decision, scopes: str) -> None:
    assert (decision.allow, decision.status) == (False, 403)
    assert decision.reason is Reason.INSUFFICIENT_SCOPE
    assert decision.response_headers["WWW-Authenticate"] == (
        f'Bearer realm="idp", error="insufficient_scope", scope="{scopes}"'
    )


def test_a_scope_string_or_an_scp_array_grants_the_scope(engine: Engine, rsa1: SigningKey) -> None:
    assert call(engine, rsa1, "GET", "/orders", scope="openid orders:read").allow
    assert call(engine, rsa1, "GET", "/orders", scp=["orders:read"]).allow
    assert call(engine, rsa1, "GET", "/orders", roles=[], scope="orders:read").allow


def test_without_the_scope_it_is_insufficient_scope(engine: Engine, rsa1: SigningKey) -> None:
    assert_insufficient(call(engine, rsa1, "GET", "/orders"), "orders:read")
    assert_insufficient(call(engine, rsa1, "GET", "/orders", scope="orders:write"), "orders:read")
    # a scope is an exact token: no prefix, case or wildcard matching
    for near in ("orders", "ORDERS:READ", "orders:read:x", "orders:*"):
        assert_insufficient(call(engine, rsa1, "GET", "/orders", scope=near), "orders:read")


def test_role_and_scope_are_both_needed(engine: Engine, rsa1: SigningKey) -> None:
    assert call(engine, rsa1, "POST", "/orders", scope="orders:write").allow
    assert_insufficient(call(engine, rsa1, "POST", "/orders", scope="orders:read"), "orders:write")
    no_role = call(engine, rsa1, "POST", "/orders", roles=[], scope="orders:write")
    assert (no_role.status, no_role.reason) == (403, Reason.NO_ALLOW)  # the role decides first


def test_every_listed_scope_is_needed_and_conditions_still_apply(
    engine: Engine, rsa1: SigningKey
) -> None:
    both = "orders:write orders:delete"
    assert call(engine, rsa1, "DELETE", "/orders/7", scope=both).allow
    assert_insufficient(
        call(engine, rsa1, "DELETE", "/orders/7", scope="orders:write"),
        "orders:write orders:delete",
    )
    refused = call(engine, rsa1, "DELETE", "/orders/0", scope=both)
    assert (refused.status, refused.reason) == (403, Reason.NO_ALLOW)
    admin = call(engine, rsa1, "DELETE", "/orders/0", roles=["admin"])  # no scope needed
    assert admin.allow


def test_anonymous_callers_get_401_not_insufficient_scope(engine: Engine) -> None:
    decision = engine.decide(Request("GET", "/orders"))
    assert (decision.status, decision.reason) == (401, Reason.AUTHN_MISSING)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"scope": ["orders:read"]}, "token claim `scope` is not a space-separated list of scopes"),
        ({"scope": "orders:read  openid"}, "token claim `scope` is not a space-separated list"),
        ({"scope": " orders:read"}, "token claim `scope` is not a space-separated list"),
        ({"scope": 'orders:"read'}, "token claim `scope` is not a space-separated list"),
        ({"scp": "orders:read"}, "token claim `scp` is not an array of scopes"),
        ({"scp": ["orders:read", 7]}, "token claim `scp` is not an array of scopes"),
        ({"scp": ["orders read"]}, "token claim `scp` is not an array of scopes"),
        ({"scope": "orders:read", "scp": ["orders:read"]}, "token has both `scope` and `scp`"),
    ],
)
def test_malformed_scope_claims_make_the_token_invalid(
    engine: Engine, rsa1: SigningKey, changes: dict[str, Any], message: str
) -> None:
    decision = call(engine, rsa1, "GET", "/orders", **changes)
    assert (decision.status, decision.reason) == (401, Reason.AUTHN_INVALID)
    assert decision.message.startswith(message)
    assert 'error="invalid_token"' in decision.response_headers["WWW-Authenticate"]


def test_introspection_answers_carry_scopes(
    tmp_path: Path, idp: IdP, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INTROSPECT_SECRET", idp.client_secret)
    text = f"""
    authn introspect opaque {{
        endpoint "{idp.base_url}/introspect"
        client_id "{idp.client_id}"
        client_secret env "INTROSPECT_SECRET"
        roles claim "roles"
    }}
    {ROUTES}"""
    engine = Engine.from_text(text, directory=str(tmp_path), clock=lambda: NOW)
    answer = {"active": True, "sub": "svc", "exp": NOW + 60, "roles": ["user"]}
    idp.answers["t-read"] = {**answer, "scope": "orders:read"}
    idp.answers["t-none"] = answer
    assert engine.decide(Request("GET", "/orders", bearer("t-read"))).allow
    refused = engine.decide(Request("GET", "/orders", bearer("t-none")))
    assert refused.reason is Reason.INSUFFICIENT_SCOPE
    assert refused.response_headers["WWW-Authenticate"] == (
        'Bearer realm="opaque", error="insufficient_scope", scope="orders:read"'
    )


def test_scopes_are_compiled_to_shared_frozensets(engine: Engine) -> None:
    rules = [
        allow
        for route in (
            engine.policy.tree.match(("orders",), "GET"),
            engine.policy.tree.match(("orders",), "POST"),
        )
        if route is not None
        for allow in route[0].allows
    ]
    assert [r.scopes for r in rules] == [frozenset({"orders:read"}), frozenset({"orders:write"})]
    assert [r.scope_text for r in rules] == ["orders:read", "orders:write"]


@pytest.mark.parametrize(
    ("rule", "column", "message"),
    [
        ('allow scope "orders read"', 28, "`orders read` is not a scope"),
        ('allow scope ""', 28, "`` is not a scope"),
        ('allow role user scope "a", "b\\\\c"', 43, "`b\\c` is not a scope"),
        ('allow scope "café"', 28, "`café` is not a scope"),
        ('allow scope "a", "a"', 33, "scope `a` is listed twice"),
    ],
)
def test_bad_scopes_are_compile_errors_with_spans(rule: str, column: int, message: str) -> None:
    with pytest.raises(PolicyError) as caught:
        Engine.from_text(f"role user\nroute GET /x {{ {rule} }}\n")
    rendered = caught.value.render()
    assert f"inline.policy:2:{column}: error[compile/bad-scope]: {message}" in rendered
