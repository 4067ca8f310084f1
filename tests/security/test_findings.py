"""Findings of the security review (F1-F7 in SECURITY.md), each as the regression test
that proves its fix: bodies and query parameters a condition cannot read without
guessing are refused, token times must be finite, and no input reaches a 500.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from pathlib import Path

import pytest
from security_support import HS_SECRET, SECRET_ENV

from policyengine import Engine, Request
from policyengine.request import Identity

USER = Identity("u", frozenset({"user"}))
UNCHECKED = """
role user
route POST /members {
    allow role user
    deny when body.role == "owner"
}
route GET /export {
    allow role user
    deny when query.format == "full"
}
"""


@pytest.mark.parametrize(
    "body",
    [
        b'{"role": "owner", "role": "owner"}',  # duplicate key: most parsers take one
        b'{"role": "owner",}',  # trailing comma: accepted by lenient parsers
        b'\xef\xbb\xbf{"role": "owner"}',  # a byte order mark many parsers skip
        b'{"role": "owner", "pad": "' + b"a" * (1024 * 1024) + b'"}',  # over 1 MiB: unread
    ],
    ids=["duplicate key", "trailing comma", "BOM", "over 1 MiB"],
)
def test_a_deny_on_the_body_holds_for_bodies_it_cannot_read(body: bytes) -> None:
    engine = Engine.from_text(UNCHECKED)
    request = Request("POST", "/members", {"Content-Type": "application/json"}, body,
                      identity=USER)  # fmt: skip
    assert not engine.decide(request).allow


@pytest.mark.parametrize("query", ["format=csv&format=full", "format=full%00"])
def test_a_deny_on_the_query_holds_for_ambiguous_parameters(query: str) -> None:
    engine = Engine.from_text(UNCHECKED)
    assert not engine.decide(Request("GET", f"/export?{query}", identity=USER)).allow


def test_the_same_rules_hold_with_schemas() -> None:
    """What a policy author can do today (lint/unchecked-input says so): declare the input."""
    engine = Engine.from_text("""
        role user
        schema Member { role: string }
        route POST /members { allow role user; deny when body.role == "owner"; body Member }
        route GET /export { allow role user; deny when query.format == "full"
                            query { format?: string } }
    """)
    dup = b'{"role": "owner", "role": "owner"}'
    post = Request("POST", "/members", {"Content-Type": "application/json"}, dup, identity=USER)
    assert engine.decide(post).status == 400
    assert (
        engine.decide(Request("GET", "/export?format=csv&format=full", identity=USER)).status == 400
    )


def _hs256(payload: str) -> str:
    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64(payload.encode())
    mac = hmac.new(HS_SECRET.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64(mac)}"


def _token_with(corpus: tuple[Path, object], monkeypatch: pytest.MonkeyPatch, extra: str) -> int:
    monkeypatch.setenv(SECRET_ENV, HS_SECRET)
    engine = Engine.load(corpus[0])
    claims = '"iss": "https://idp.security.test", "aud": "corpus", "sub": "t", "roles": ["user"]'
    token = _hs256("{" + claims + extra + "}")
    decision = engine.decide(Request("GET", "/api/items/7", {"Authorization": f"Bearer {token}"}))
    return decision.status


@pytest.mark.parametrize(
    "extra",
    [', "exp": Infinity', ', "exp": NaN', ', "exp": 1e400', f', "exp": {2**31}, "nbf": NaN'],
    ids=["exp Infinity", "exp NaN", "exp 1e400", "nbf NaN"],
)
def test_non_finite_token_times_are_refused(
    corpus: tuple[Path, object], monkeypatch: pytest.MonkeyPatch, extra: str
) -> None:
    assert _token_with(corpus, monkeypatch, extra) == 401


def test_an_exp_beyond_float_range_is_a_401(
    corpus: tuple[Path, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _token_with(corpus, monkeypatch, ', "exp": 1' + "0" * 400) == 401


def test_the_signer_helper_makes_accepted_tokens(
    corpus: tuple[Path, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Proves the tokens above fail for their times, not for their signature."""
    assert _token_with(corpus, monkeypatch, f', "exp": {int(time.time()) + 600}') == 200


def test_an_api_key_with_a_lone_surrogate_is_a_401(
    corpus: tuple[Path, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SECRET_ENV, HS_SECRET)
    engine = Engine.load(corpus[0])
    decision = engine.decide(Request("GET", "/api/items/7", {"X-API-Key": "key\udada"}))
    assert decision.status == 401
