"""Real nginx with `auth_request`, configured exactly as docs/gateways/nginx/ says.

Set-up: client (from 127.0.0.2) -> nginx -> auth subrequest -> policyengine
(`--nginx-mode --trusted-proxy 127.0.0.1/32`) -> on allow, the echo app. nginx
reaches the sidecar from 127.0.0.1, the only trusted proxy; the client's own
address is not trusted, so whatever forwarded headers it sends are not believed.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from server_support import (
    GATEWAY_DOCS,
    UNTRUSTED_CLIENT,
    EchoUpstream,
    GatewayStack,
    check_identity_reaches_the_app,
    check_spoofed_identity_never_reaches_the_app,
    free_port,
    gateway_config,
    nginx_running,
    request,
    serve_process,
    write_policy,
)

CONFIG = GATEWAY_DOCS / "nginx" / "policyengine.conf"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayStack]:
    root = tmp_path_factory.mktemp("nginx")
    policy = write_policy(root / "policy")
    sidecar, listen = free_port(), free_port()
    with (
        EchoUpstream() as app,
        serve_process(policy, "--nginx-mode", "--trusted-proxy", "127.0.0.1/32", port=sidecar),
    ):
        site = gateway_config(CONFIG, sidecar=sidecar, app=app.port, listen=listen)
        with nginx_running(root / "nginx", site, listen):
            yield GatewayStack(listen, sidecar)


def test_an_allowed_request_reaches_the_app_with_the_identity(stack: GatewayStack) -> None:
    check_identity_reaches_the_app(stack)


def test_identity_headers_sent_by_the_client_never_reach_the_app(stack: GatewayStack) -> None:
    check_spoofed_identity_never_reaches_the_app(stack)


def test_401_with_the_challenge(stack: GatewayStack) -> None:
    reply = stack.get("/api/orders/7")
    assert reply.status == 401 and reply.json()["reason"] == "authn.missing"
    assert reply.headers.get_all("WWW-Authenticate") == [
        'ApiKey realm="api_key", header="X-API-Key"'
    ]
    assert reply.headers["X-Decision-Id"] == reply.json()["decision_id"]
    assert stack.get("/api/orders/7", X_API_Key="wrong").json()["reason"] == "authn.invalid"


def test_403(stack: GatewayStack) -> None:
    reply = stack.get("/api/orders/7", method="DELETE", X_API_Key="key-alice")
    assert reply.status == 403 and reply.json()["reason"] == "authz.no_allow"


def test_429_reaches_the_client_with_retry_after(stack: GatewayStack) -> None:
    replies = [stack.get("/api/limited", X_API_Key="key-ops") for _ in range(3)]
    assert [r.status for r in replies] == [200, 200, 429]
    limited = replies[-1]
    assert limited.json()["reason"] == "ratelimit.exceeded"
    assert 0 < int(limited.headers["Retry-After"]) <= 60
    assert limited.headers["RateLimit-Policy"] == '"tight";q=2;w=60'
    assert "RateLimit" in limited.headers


def test_400_reaches_the_client(stack: GatewayStack) -> None:
    reply = stack.get("/api/search?q=" + "x" * 20)
    assert reply.status == 400 and reply.json()["reason"] == "input.invalid"
    assert stack.get("/api/search?q=short").status == 200


def test_a_body_rule_fails_closed_behind_auth_request(stack: GatewayStack) -> None:
    # auth_request never passes the body on: a route that checks one cannot allow
    reply = stack.get(
        "/api/orders",
        method="POST",
        X_API_Key="key-alice",
        Content_Type="application/json",
        body=b'{"productId": "ABCD1234", "quantity": 1}',
    )
    assert reply.status == 400 and reply.json()["reason"] == "input.invalid"


def test_forwarded_for_spoofing_from_the_client_is_ignored(stack: GatewayStack) -> None:
    assert stack.get("/api/internal", X_Forwarded_For="10.1.2.3").status == 403
    assert stack.get("/api/internal", X_Real_IP="10.1.2.3").status == 403
    # the client's real address does get through nginx, the trusted hop
    assert stack.get("/api/local").status == 200
    assert stack.get("/api/local", X_Forwarded_For="10.1.2.3").status == 200


def test_the_host_nginx_serves_is_the_host_decided_on(stack: GatewayStack) -> None:
    assert stack.get("/api/hosted", Host="shop.example").status == 200
    assert stack.get("/api/hosted", Host="SHOP.example.").status == 200  # nginx's $host
    other = stack.get("/api/hosted", Host="evil.example")
    assert other.status == 421 and other.json()["reason"] == "route.host_mismatch"
    # the client's own X-Forwarded-Host is replaced by nginx's $host
    spoofed = stack.get("/api/hosted", Host="evil.example", X_Forwarded_Host="shop.example")
    assert spoofed.status == 421


def test_a_forged_forwarded_uri_is_refused(stack: GatewayStack) -> None:
    # nginx passes client headers to the auth request: X-Forwarded-Uri must not win
    reply = stack.get("/api/orders/7", X_Forwarded_Uri="/api/public")
    assert reply.status == 400 and reply.json()["reason"] == "request.invalid"


def test_nginx_keeps_its_connections_to_the_sidecar(stack: GatewayStack) -> None:
    def accepted() -> float:
        metrics = request(stack.sidecar, "GET", "/metrics").body.decode()
        line = next(x for x in metrics.splitlines() if x.startswith("policyengine_connections"))
        return float(line.split()[-1])

    before = accepted()
    for index in range(40):  # allows and denials alike: no body, so keep-alive holds
        stack.get("/api/public" if index % 2 else "/api/orders/7")
    assert accepted() - before <= 2


def test_a_sidecar_that_is_down_means_500(tmp_path: Path) -> None:
    listen = free_port()
    with EchoUpstream() as app:
        site = gateway_config(CONFIG, sidecar=free_port(), app=app.port, listen=listen)
        with nginx_running(tmp_path / "nginx", site, listen):
            reply = request(listen, "GET", "/api/public", source=UNTRUSTED_CLIENT)
    assert reply.status == 500
