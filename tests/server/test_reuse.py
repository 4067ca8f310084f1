"""The decision cache: a reused decision is the one the engine would have made.

Each test asks the App (no socket: the connection is tested elsewhere) about
requests that share everything but one input, in an order where a cache keyed
too loosely would answer one of them with another's decision.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from server_support import make_config, parse_response, write_policy

from policyengine import Engine
from policyengine.ratelimit import limiter_from_url
from policyengine.server.app import App
from policyengine.server.clientip import TrustedProxies
from policyengine.server.message import HttpRequest
from policyengine.server.metrics import Metrics
from policyengine.server.reload import EngineHolder
from policyengine.server.responses import Response, serialize
from policyengine.server.reuse import MAX_SECONDS, DecisionCache
from policyengine.testing import FixedClock

ISSUER, AUDIENCE = "https://idp.example.test", "reuse-api"
POLICY = f"""\
policy "reuse-test"

authn api_key {{
    header "X-API-Key"
    keys file "keys.yaml"
}}

authn jwt {{
    issuer "{ISSUER}"
    audience "{AUDIENCE}"
    algorithms ES256
    public_key file "ec.pem"
    roles claim "roles"
}}

role user
role admin inherits user

limit tight 2 per minute by subject

route GET /orders/{{id:int}} {{
    allow role user
    deny when header.x-tenant == "blocked"
}}

route GET /limited {{
    allow role user
    limit tight
}}

route GET /internal {{
    allow anyone
    deny when not (client_ip in 10.0.0.0/8)
}}

route GET /search {{
    allow anyone
    deny when query.q == "forbidden"
}}

route POST /notes {{
    allow role user
    deny when body.secret == true
}}
"""
KEY = ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
def policy_dir(tmp_path: Path) -> Path:
    directory = write_policy(tmp_path / "policy", POLICY)
    public = KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    (directory / "ec.pem").write_bytes(public)
    return directory


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


@pytest.fixture
def app(policy_dir: Path, clock: FixedClock) -> App:
    return make_app(policy_dir, clock)


def make_app(policy_dir: Path, clock: FixedClock, **changes: Any) -> App:
    engine = Engine.load(policy_dir, clock=clock, limiter=limiter_from_url(None))
    return App(make_config(policy_dir, **changes), EngineHolder(engine), Metrics(), None)


def token(clock: FixedClock, subject: str, roles: list[str], lifetime: float = 600) -> str:
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": subject,
        "roles": roles,
        "iat": int(clock.now),
        "exp": int(clock.now + lifetime),
    }
    return jwt.encode(claims, KEY, algorithm="ES256")


def ask(
    app: App,
    uri: str,
    *,
    method: str = "GET",
    peer: str = "127.0.0.1",
    body: bytes = b"",
    **headers: str,
) -> tuple[int, dict[str, str], bytes]:
    """/v1/forward-auth as nginx calls it; the answer as the client would read it."""
    fields = [(b"X-Original-Method", method.encode()), (b"X-Original-URI", uri.encode())]
    fields += [(name.replace("_", "-").encode(), value.encode()) for name, value in headers.items()]
    client = TrustedProxies().peer(peer)
    reply = app.handle(HttpRequest("GET", "/v1/forward-auth", fields, body, client))
    assert isinstance(reply, Response)
    return parse_response(serialize(reply, b"", close=False, head_only=False))


def test_a_request_that_comes_back_is_answered_from_the_cache(app: App) -> None:
    answers = [ask(app, "/orders/7", x_api_key="key-alice") for _ in range(4)]
    assert all(answer == answers[0] for answer in answers)
    assert answers[0][0] == 200 and answers[0][1]["x-auth-subject"] == "alice"
    assert app.metrics.reused == 2  # kept when its key came back: the 3rd and 4th reuse it
    counts = [series.count for series in app.metrics.decisions.values()]
    assert sum(counts) == 4  # a reused decision is still counted


def test_keys_seen_once_do_not_fill_the_cache(app: App) -> None:
    for order in range(50):
        assert ask(app, f"/orders/{order}", x_api_key="key-alice")[0] == 200
    assert app.metrics.reused == 0
    assert app._cache is not None and len(app._cache._entries) == 0


def test_the_cache_keeps_at_most_its_size(policy_dir: Path, clock: FixedClock) -> None:
    app = make_app(policy_dir, clock, decision_cache=8)
    for order in range(40):
        for _ in range(3):
            assert ask(app, f"/orders/{order}", x_api_key="key-alice")[0] == 200
    assert app._cache is not None and 0 < len(app._cache._entries) <= 8
    assert app.metrics.reused == 40  # each order's third request
    reused = app.metrics.reused
    ask(app, "/orders/39", x_api_key="key-alice")  # the newest is still there
    assert app.metrics.reused == reused + 1


def test_each_credential_gets_its_own_decision(app: App, clock: FixedClock) -> None:
    callers = [
        ({"x_api_key": "key-alice"}, 200, "alice"),
        ({"x_api_key": "key-ops"}, 200, "ops"),
        ({}, 401, None),
        ({"x_api_key": "key-unknown"}, 401, None),
        ({"authorization": f"Bearer {token(clock, 'carol', ['user'])}"}, 200, "carol"),
        ({"authorization": f"Bearer {token(clock, 'dave', ['guest'])}"}, 403, None),
    ]
    for _ in range(3):
        for headers, status, subject in callers:
            got, head, _ = ask(app, "/orders/7", **headers)
            assert got == status, headers
            assert head.get("x-auth-subject") == subject
    assert app.metrics.reused > 0


def test_a_header_a_condition_reads_is_part_of_the_key(app: App) -> None:
    assert ask(app, "/orders/7", x_api_key="key-alice")[0] == 200
    assert ask(app, "/orders/7", x_api_key="key-alice", x_tenant="blocked")[0] == 403
    assert ask(app, "/orders/7", x_api_key="key-alice", x_tenant="acme")[0] == 200


def test_the_original_method_and_target_are_part_of_the_key(app: App) -> None:
    assert ask(app, "/search?q=fine")[0] == 200
    assert ask(app, "/search?q=forbidden")[0] == 403
    assert ask(app, "/orders/7", x_api_key="key-alice")[0] == 200
    assert ask(app, "/orders/7", method="DELETE", x_api_key="key-alice")[0] == 403


def test_the_client_address_is_part_of_the_key_when_a_rule_reads_it(app: App) -> None:
    assert ask(app, "/internal", peer="10.1.2.3")[0] == 200
    assert ask(app, "/internal", peer="192.0.2.1")[0] == 403
    assert ask(app, "/internal", peer="10.1.2.3")[0] == 200


def test_a_rate_limited_route_is_reused_but_counted_every_time(app: App) -> None:
    answers = [ask(app, "/limited", x_api_key="key-alice") for _ in range(4)]
    assert [status for status, _, _ in answers] == [200, 200, 429, 429]
    assert app.metrics.reused == 2  # kept once its key came back: the 3rd and 4th
    assert [h["ratelimit"] for _, h, _ in answers[:2]] == ['"tight";r=1;t=60', '"tight";r=0;t=60']
    refused = answers[2][1]
    assert refused["retry-after"] == "60" and refused["ratelimit"] == '"tight";r=0;t=60'
    assert b"rate limit `tight` exceeded" in answers[3][2]
    assert ask(app, "/limited", x_api_key="key-ops")[0] == 200  # a counter of its own


def test_a_reused_limited_decision_counts_at_the_time_it_is_reused(
    app: App, clock: FixedClock
) -> None:
    assert [ask(app, "/limited", x_api_key="key-alice")[0] for _ in range(2)] == [200, 200]
    clock.now += 5
    assert ask(app, "/limited", x_api_key="key-alice")[0] == 429  # reused, still full
    clock.now += 56  # the window has passed both (2 per minute, exact)
    status, headers, _ = ask(app, "/limited", x_api_key="key-alice")
    assert status == 200 and headers["ratelimit"] == '"tight";r=1;t=60'
    assert app.metrics.reused == 1  # the last came after the entry's horizon (MAX_SECONDS)


def test_a_decision_that_read_the_body_is_not_reused(app: App) -> None:
    headers = {"x_api_key": "key-alice", "content_type": "application/json"}
    assert ask(app, "/notes", method="POST", body=b'{"secret": false}', **headers)[0] == 200
    assert ask(app, "/notes", method="POST", body=b'{"secret": true}', **headers)[0] == 403
    assert app.metrics.reused == 0


def test_a_failed_authentication_is_not_reused(app: App, clock: FixedClock) -> None:
    forged = token(clock, "carol", ["user"])[:-4] + "AAAA"
    for _ in range(2):
        assert ask(app, "/orders/7", authorization=f"Bearer {forged}")[0] == 401
    assert app.metrics.reused == 0


def test_a_token_is_not_reused_past_its_expiry(app: App, clock: FixedClock) -> None:
    bearer = f"Bearer {token(clock, 'carol', ['user'], lifetime=5)}"
    assert ask(app, "/orders/7", authorization=bearer)[0] == 200
    assert ask(app, "/orders/7", authorization=bearer)[0] == 200  # now kept
    clock.now += 4
    assert ask(app, "/orders/7", authorization=bearer)[0] == 200
    assert app.metrics.reused == 1
    clock.now += 2
    status, _, body = ask(app, "/orders/7", authorization=bearer)
    assert status == 401 and b"authn.expired" in body


def test_no_decision_is_reused_for_longer_than_the_bound(app: App, clock: FixedClock) -> None:
    ask(app, "/orders/7", x_api_key="key-alice")
    clock.now += MAX_SECONDS + 1
    ask(app, "/orders/7", x_api_key="key-alice")
    assert app.metrics.reused == 0


def test_a_reused_deny_gets_a_decision_id_of_its_own(app: App) -> None:
    answers = [ask(app, "/orders/7", x_api_key="key-alice", x_tenant="blocked") for _ in range(3)]
    assert [status for status, _, _ in answers] == [403, 403, 403]
    assert app.metrics.reused == 1
    assert len({head["x-decision-id"] for _, head, _ in answers}) == 3


def test_a_reload_starts_with_an_empty_cache(app: App, policy_dir: Path, clock: FixedClock) -> None:
    assert ask(app, "/orders/7", x_api_key="key-alice")[0] == 200
    stricter = POLICY.replace(
        "allow role user\n    deny when header", "allow role admin\n    deny when header"
    )
    (policy_dir / "gateway.policy").write_text(stricter)
    app.holder.engine = Engine.load(policy_dir, clock=clock)
    assert ask(app, "/orders/7", x_api_key="key-alice")[0] == 403


def test_the_cache_can_be_turned_off(policy_dir: Path, clock: FixedClock) -> None:
    app = make_app(policy_dir, clock, decision_cache=0)
    for _ in range(3):
        assert ask(app, "/orders/7", x_api_key="key-alice")[0] == 200
    assert app.metrics.reused == 0


def test_envoy_checks_key_on_their_own_method_and_target(app: App) -> None:
    def envoy(method: str, path: str) -> int:
        fields = [(b"X-API-Key", b"key-alice")]
        http = HttpRequest(method, "/v1/envoy" + path, fields, b"", TrustedProxies().peer("::1"))
        reply = app.handle(http)
        assert isinstance(reply, Response)
        return reply.status

    assert [envoy("GET", "/orders/7") for _ in range(3)] == [200, 200, 200]
    assert envoy("DELETE", "/orders/7") == 403
    assert envoy("GET", "/orders/x") == 403
    assert app.metrics.reused == 1


def test_the_key_joins_repeated_fields_as_the_engine_sees_them(app: App) -> None:
    """The key is read from the fields as received, the engine's headers are combined from
    them: two requests share a key exactly when the engine sees the same header values."""
    cache = DecisionCache(app.holder.engine)

    def seen(*fields: tuple[bytes, bytes]) -> tuple[object, str | None]:
        original = [(b"X-Original-Method", b"GET"), (b"X-Original-URI", b"/api/orders/7")]
        http = HttpRequest("GET", "/v1/forward-auth", [*original, *fields], b"", None)
        return cache.key("forward-auth", http), http.headers.get("x-api-key")

    repeated = seen((b"X-API-Key", b"key-alice"), (b"x-api-key", b"key-bob"))
    joined = seen((b"X-Api-Key", b"key-alice, key-bob"))
    single = seen((b"X-API-KEY", b"key-alice"))
    assert repeated == joined and repeated[1] == "key-alice, key-bob"
    assert single[0] != repeated[0] and single[1] == "key-alice"
    assert seen((b"X-API-Key", b"key-alice"), (b"Cookie", b"a=1"))[0] == single[0]


def ask_lines(app: App, endpoint: str, fields: list[tuple[str, str]]) -> tuple[int, bytes]:
    """Field lines as sent, repeats included, to forward-auth or Envoy's check path."""
    if endpoint == "forward-auth":
        fields = [("X-Original-Method", "GET"), ("X-Original-URI", "/orders/7"), *fields]
        http = HttpRequest("GET", "/v1/forward-auth", _raw(fields), b"", TrustedProxies().peer(
            "127.0.0.1"))  # fmt: skip
    else:
        http = HttpRequest("GET", "/v1/envoy/orders/7", _raw(fields), b"",
                           TrustedProxies().peer("127.0.0.1"))  # fmt: skip
    reply = app.handle(http)
    assert isinstance(reply, Response)
    status, _, body = parse_response(serialize(reply, b"", close=False, head_only=False))
    return status, body


def _raw(fields: list[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    return [(name.encode(), value.encode()) for name, value in fields]


@pytest.mark.parametrize("endpoint", ["forward-auth", "envoy"])
def test_two_credentials_or_one_sent_twice_are_ambiguous_on_every_endpoint(
    app: App, clock: FixedClock, endpoint: str
) -> None:
    bearer = ("Authorization", f"Bearer {token(clock, 'carol', ['user'])}")
    key = ("X-API-Key", "key-alice")
    for _ in range(3):  # the single credential's decision is cached by now
        assert ask_lines(app, endpoint, [key])[0] == 200
        assert ask_lines(app, endpoint, [bearer])[0] == 200
    for fields in ([key, key], [bearer, bearer], [key, bearer]):
        status, body = ask_lines(app, endpoint, fields)
        assert status == 400 and b"authn.ambiguous" in body, (fields, body)


def test_an_override_field_is_never_answered_from_the_cache(app: App) -> None:
    for _ in range(3):
        assert ask(app, "/orders/7", x_api_key="key-alice")[0] == 200
    assert app.metrics.reused >= 1
    for name, value, reason in (
        ("x_http_method_override", "DELETE", b"request.method_override"),
        ("x_original_url", "/admin", b"request.url_override"),
    ):
        status, _, body = ask(app, "/orders/7", x_api_key="key-alice", **{name: value})
        assert status == 400 and reason in body
    status, _, body = ask(app, "/orders/7?_method=DELETE", x_api_key="key-alice")
    assert status == 400 and b"request.method_override" in body


def test_a_permitted_override_is_decided_on_and_keyed_by(tmp_path: Path) -> None:
    """Under `permit method_override` the override picks the route: a GET decision in the
    cache never answers the same target overridden to DELETE, nor the reverse."""
    policy = write_policy(
        tmp_path / "p",
        "permit method_override\n"
        "route GET /things/{id} { allow anyone }\n"
        "route DELETE /things/{id} { deny when true }\n",
    )
    app = make_app(policy, FixedClock())
    for _ in range(3):  # the cache admits a decision the second time it is made
        assert ask(app, "/things/7")[0] == 200
        status, _, body = ask(app, "/things/7", x_http_method_override="delete")
        assert status == 401 and b"authn.missing" in body, body  # the DELETE route's answer
        assert ask(app, "/things/7?_method=DELETE")[0] == 401
        assert ask(app, "/things/7", method="POST", x_method_override="GET")[0] == 200
    assert app.metrics.reused >= 1
