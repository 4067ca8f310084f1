"""Real nginx and Caddy asking an HTTPS sidecar with a client certificate (mTLS), with
the documented files: docs/gateways/nginx/sidecar-tls.conf and caddy/Caddyfile.tls."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme
from server_support import (
    GATEWAY_DOCS,
    EchoUpstream,
    GatewayStack,
    caddy_running,
    free_port,
    gateway_config,
    nginx_running,
    serve_process,
    upstream_headers,
    write_policy,
)

DOCUMENTED_PROXY_PASS = "        proxy_pass http://policyengine/v1/forward-auth;\n"


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every file the documented configurations name, under the documented names."""
    root = tmp_path_factory.mktemp("certs")
    sidecar_ca, gateway_ca = trustme.CA(), trustme.CA()
    sidecar = sidecar_ca.issue_cert("localhost", "127.0.0.1")
    gateway = gateway_ca.issue_cert("gateway.internal")
    files = {
        "sidecar-ca.pem": sidecar_ca.cert_pem,
        "gateways-ca.pem": gateway_ca.cert_pem,
        "sidecar.pem": sidecar.cert_chain_pems[0],
        "sidecar.key": sidecar.private_key_pem,
        "gateway.pem": gateway.cert_chain_pems[0],
        "gateway.key": gateway.private_key_pem,
    }
    for name, blob in files.items():
        blob.write_to_path(str(root / name))
    return {name: root / name for name in files}


def with_paths(text: str, certs: dict[str, Path]) -> str:
    for name, path in certs.items():
        for directory in ("/etc/policyengine/tls/", "/etc/nginx/tls/", "/etc/caddy/tls/"):
            text = text.replace(directory + name, str(path))
    return text


def sidecar_args(certs: dict[str, Path]) -> list[str]:
    return [
        "--trusted-proxy", "127.0.0.1/32",
        "--tls-cert", str(certs["sidecar.pem"]), "--tls-key", str(certs["sidecar.key"]),
        "--tls-client-ca", str(certs["gateways-ca.pem"]),
    ]  # fmt: skip


@pytest.fixture(scope="module")
def nginx(
    tmp_path_factory: pytest.TempPathFactory, certs: dict[str, Path]
) -> Iterator[GatewayStack]:
    root = tmp_path_factory.mktemp("nginx-tls")
    policy = write_policy(root / "policy")
    sidecar, listen = free_port(), free_port()
    snippet = (GATEWAY_DOCS / "nginx" / "sidecar-tls.conf").read_text()
    lines = "".join(line for line in snippet.splitlines(True) if not line.startswith("#"))
    with (
        EchoUpstream() as app,
        serve_process(policy, "--nginx-mode", *sidecar_args(certs), port=sidecar),
    ):
        site = gateway_config(
            GATEWAY_DOCS / "nginx" / "policyengine.conf",
            sidecar=sidecar,
            app=app.port,
            listen=listen,
        )
        assert site.count(DOCUMENTED_PROXY_PASS) == 1
        site = site.replace(DOCUMENTED_PROXY_PASS, with_paths(lines, certs))
        with nginx_running(root / "nginx", site, listen):
            yield GatewayStack(listen, sidecar)


@pytest.fixture(scope="module")
def caddy(
    tmp_path_factory: pytest.TempPathFactory, certs: dict[str, Path]
) -> Iterator[GatewayStack]:
    root = tmp_path_factory.mktemp("caddy-tls")
    policy = write_policy(root / "policy")
    sidecar, listen = free_port(), free_port()
    with EchoUpstream() as app, serve_process(policy, *sidecar_args(certs), port=sidecar):
        caddyfile = gateway_config(
            GATEWAY_DOCS / "caddy" / "Caddyfile.tls", sidecar=sidecar, app=app.port, listen=listen
        )
        with caddy_running(root / "caddy", with_paths(caddyfile, certs), listen):
            yield GatewayStack(listen, sidecar)


@pytest.mark.parametrize("gateway", ["nginx", "caddy"])
def test_decisions_over_mtls_reach_the_app_and_the_client(
    gateway: str, request: pytest.FixtureRequest
) -> None:
    stack: GatewayStack = request.getfixturevalue(gateway)
    allowed = stack.get("/api/orders/7", X_API_Key="key-alice", X_Auth_Subject="root")
    assert allowed.status == 200
    headers = upstream_headers(allowed)
    assert headers["x-auth-subject"] == ["alice"] and headers["x-auth-roles"] == ["user"]
    missing = stack.get("/api/orders/7")
    assert missing.status == 401 and missing.json()["reason"] == "authn.missing"
    assert stack.get("/api/public").status == 200
