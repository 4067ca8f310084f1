"""The Engine: order of evaluation, the decision object, explain, failing closed."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
from pathlib import Path

import pytest

from policyengine import Decision, Engine, Identity, Reason, Request
from policyengine.authenticator import Authenticator, AuthnFailure
from policyengine.context import RequestContext

KEY = "k-" + "x" * 30


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    digest = hashlib.sha256(KEY.encode()).hexdigest()
    (tmp_path / "keys.yaml").write_text(
        f'keys:\n  - sha256: "{digest}"\n    subject: ann\n    roles: [user]\n'
    )
    text = """
policy "engine-test"
authn api_key { header "X-Key"; keys file "keys.yaml" }
role viewer
role user inherits viewer
route GET /open { allow anyone }
route GET /docs/{id:int} {
    deny when path.id == 13
    allow role viewer
}
route DELETE /docs/{id:int} { allow role admin_only }
role admin_only
"""
    return Engine.from_text(text, directory=str(tmp_path))


def ask(engine: Engine, method: str, path: str, key: str | None = None) -> Decision:
    headers = {"X-Key": key} if key is not None else {}
    return engine.decide(Request(method, path, headers))


def test_decision_dict_has_exactly_the_documented_keys(engine: Engine) -> None:
    decision = ask(engine, "GET", "/docs/1", KEY)
    assert decision.to_dict() == {
        "allow": True, "status": 200, "reason": "allow", "message": "allowed",
        "route": "GET /docs/{id:int}", "rule": "inline.policy:9", "subject": "ann",
        "roles": ["user"], "upstream_headers": {"X-Auth-Subject": "ann", "X-Auth-Roles": "user"},
        "response_headers": {}, "errors": [],
    }  # fmt: skip
    assert decision.policy == "engine-test"


@pytest.mark.parametrize(
    ("method", "path", "key", "status", "reason"),
    [
        ("GET", "/docs/../../x", KEY, 400, Reason.BAD_PATH),  # 1. normalize first
        ("GET", "/nowhere", "wrong", 403, Reason.UNMATCHED),  # 2. match before authn
        ("GET", "/open", "wrong", 401, Reason.AUTHN_INVALID),  # 3. bad credentials even here
        ("GET", "/docs/1", None, 401, Reason.AUTHN_MISSING),
        ("GET", "/docs/13", KEY, 403, Reason.DENIED),  # 4. deny beats allow
        ("DELETE", "/docs/1", KEY, 403, Reason.NO_ALLOW),
        ("DELETE", "/docs/1", None, 401, Reason.AUTHN_MISSING),
        ("GET", "/open", None, 200, Reason.ALLOW),
    ],
)
def test_order_of_evaluation(
    engine: Engine, method: str, path: str, key: str | None, status: int, reason: Reason
) -> None:
    decision = ask(engine, method, path, key)
    assert (decision.status, decision.reason) == (status, reason)
    assert decision.allow is (status == 200)


@pytest.mark.parametrize(
    ("method", "path", "key", "reusable"),
    [
        ("GET", "/docs/../../x", KEY, True),  # the target alone decides it
        ("GET", "/nowhere", "wrong", True),
        ("GET", "/open", "wrong", False),  # a failed credential: a key set may change
        ("GET", "/docs/1", None, True),
        ("GET", "/docs/13", KEY, True),
        ("DELETE", "/docs/1", KEY, True),
        ("GET", "/docs/1", KEY, True),
    ],
)
def test_which_decisions_may_be_reused(
    engine: Engine, method: str, path: str, key: str | None, reusable: bool
) -> None:
    """The key never expires here, so a reusable decision is reusable for good (a cache
    bounds it itself); the rest say 0.0."""
    reuse_until = ask(engine, method, path, key).reuse_until
    assert reuse_until == (float("inf") if reusable else 0.0)


def test_denials_carry_no_upstream_headers(engine: Engine) -> None:
    decision = ask(engine, "DELETE", "/docs/1", KEY)
    assert decision.upstream_headers == {}
    assert decision.subject == "ann"
    assert decision.message == "role user may not DELETE /docs/{id:int}"


def test_missing_credentials_get_a_challenge(engine: Engine) -> None:
    decision = ask(engine, "GET", "/docs/1")
    assert decision.response_headers["WWW-Authenticate"].startswith("ApiKey")


def test_explain_traces_every_step_with_sites(engine: Engine) -> None:
    explanation = engine.explain(Request("GET", "/docs/13", {"X-Key": KEY}))
    assert explanation.decision.reason is Reason.DENIED
    assert explanation.trace == (
        "normalize: /docs/13",
        "match: GET /docs/{id:int} (inline.policy:7)",
        "authn api_key: ann",
        "deny inline.policy:8: matched (deny when path.id == 13)",
    )
    assert explanation.to_dict()["decision"]["reason"] == "authz.denied"


def test_explain_says_why_each_allow_failed(engine: Engine) -> None:
    identity = Identity("bob", frozenset({"stranger"}))
    trace = engine.explain(Request("GET", "/docs/2", identity=identity)).trace
    assert "allow inline.policy:9: role does not match (allow role viewer)" in trace


def test_decide_async_gives_the_same_decisions(engine: Engine) -> None:
    for path, key in (("/docs/1", KEY), ("/docs/13", KEY), ("/open", "bad"), ("/x", None)):
        request = Request("GET", path, {"X-Key": key} if key else {})
        assert asyncio.run(engine.decide_async(request)) == engine.decide(request)


class ExplodingAuthenticator(Authenticator):
    headers = ("authorization",)

    def presented(self, ctx: RequestContext) -> bool:
        return True

    def authenticate(self, ctx: RequestContext) -> Identity:
        raise RuntimeError(ctx.header("authorization"))  # request data in the message


def test_internal_errors_fail_closed_without_logging_request_data(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    match = engine.policy.tree.match(("open",), "GET")
    assert match is not None
    broken = dataclasses.replace(match[0], authenticators=(ExplodingAuthenticator("boom"),))
    endpoint = engine.policy.tree.endpoint(("open",))
    endpoint.by_method["GET"] = broken
    with caplog.at_level(logging.ERROR, logger="policyengine"):
        decision = engine.decide(Request("GET", "/open", {"Authorization": "Bearer s3cr3t-t0ken"}))
    assert (decision.allow, decision.status, decision.reason) == (False, 500, Reason.INTERNAL)
    assert "RuntimeError" in caplog.text
    assert "s3cr3t-t0ken" not in caplog.text


def test_an_authn_failure_is_a_401_with_the_challenge(engine: Engine) -> None:
    class Rejecting(ExplodingAuthenticator):
        def authenticate(self, ctx: RequestContext) -> Identity:
            raise AuthnFailure(Reason.AUTHN_EXPIRED, "token expired", 'Bearer error="x"')

    match = engine.policy.tree.match(("open",), "GET")
    assert match is not None
    engine.policy.tree.endpoint(("open",)).by_method["GET"] = dataclasses.replace(
        match[0], authenticators=(Rejecting("r"),)
    )
    decision = ask(engine, "GET", "/open")
    assert (decision.status, decision.reason) == (401, Reason.AUTHN_EXPIRED)
    assert decision.response_headers == {"WWW-Authenticate": 'Bearer error="x"'}


def test_the_clock_is_injected(tmp_path: Path) -> None:
    digest = hashlib.sha256(b"old-key").hexdigest()
    (tmp_path / "keys.yaml").write_text(
        f'keys:\n  - sha256: "{digest}"\n    subject: s\n    expires: 2030-01-01T00:00:00Z\n'
    )
    text = (
        'authn api_key { header "K"; keys file "keys.yaml" }\nroute GET /x { allow authenticated }'
    )
    before = Engine.from_text(text, directory=str(tmp_path), clock=lambda: 1_800_000_000.0)
    after = Engine.from_text(text, directory=str(tmp_path), clock=lambda: 1_900_000_000.0)
    request = Request("GET", "/x", {"K": "old-key"})
    assert before.decide(request).status == 200
    assert after.decide(request).reason is Reason.AUTHN_EXPIRED


def test_upstream_header_names_are_configurable(engine: Engine) -> None:
    from policyengine import EngineOptions

    custom = Engine(engine.policy, options=EngineOptions("X-User", "X-Groups"))
    decision = custom.decide(Request("GET", "/docs/1", {"X-Key": KEY}))
    assert decision.upstream_headers == {"X-User": "ann", "X-Groups": "user"}


@pytest.mark.parametrize("waits", [False, True])
def test_decide_async_awaits_a_block_only_when_it_may_wait(engine: Engine, waits: bool) -> None:
    """`Authenticator.waits`: a block that may wait on an IdP is awaited; any other is
    called directly, the same identity either way."""
    calls: list[str] = []

    class Recording(ExplodingAuthenticator):
        def authenticate(self, ctx: RequestContext) -> Identity:
            calls.append("authenticate")
            return Identity("carol", frozenset({"viewer"}))

        async def authenticate_async(self, ctx: RequestContext) -> Identity:
            calls.append("authenticate_async")
            return self.authenticate(ctx)

    block = Recording("recording")
    block.waits = waits
    match = engine.policy.tree.match(("open",), "GET")
    assert match is not None
    engine.policy.tree.endpoint(("open",)).by_method["GET"] = dataclasses.replace(
        match[0], authenticators=(block,)
    )
    decision = asyncio.run(engine.decide_async(Request("GET", "/open")))
    assert (decision.allow, decision.subject) == (True, "carol")
    assert calls == (["authenticate_async", "authenticate"] if waits else ["authenticate"])
