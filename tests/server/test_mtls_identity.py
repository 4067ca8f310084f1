"""`authn mtls` through the sidecar: the forwarded certificate counts only from a
trusted proxy, whatever the decision cache holds."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from server_support import ServerThread, forward_auth, make_config, request

from policyengine.server.clientip import TrustedProxies

CHECKOUT = "spiffe://cluster.local/ns/shop/sa/checkout"
POLICY = f"""\
policy "mesh"

authn mtls {{
    subject uri
    roles map {{ "{CHECKOUT}": service }}
}}

role service

route GET /api/orders {{
    allow role service
}}
"""
GATEWAY = "127.0.0.9"  # the trusted proxy; the tests' other source is 127.0.0.1


@pytest.fixture
def mesh(tmp_path: Path) -> Iterator[ServerThread]:
    (tmp_path / "mesh.policy").write_text(POLICY)
    config = make_config(tmp_path, trusted_proxies=TrustedProxies.parse([f"{GATEWAY}/32"]))
    with ServerThread(config) as running:
        yield running


def ask(server: ServerThread, source: str, envoy: bool = False) -> tuple[int, str | None]:
    xfcc = {"X-Forwarded-Client-Cert": f"By=spiffe://cluster.local/ns/edge/sa/envoy;URI={CHECKOUT}"}
    if envoy:
        reply = request(server.port, "GET", "/v1/envoy/api/orders", xfcc, source=source)
    else:
        headers = {**forward_auth("GET", "/api/orders"), **xfcc}
        reply = request(server.port, "GET", "/v1/forward-auth", headers, source=source)
    return reply.status, reply.headers.get("X-Auth-Subject")


@pytest.mark.parametrize("envoy", [False, True], ids=["forward-auth", "envoy"])
def test_the_certificate_counts_only_from_a_trusted_proxy(mesh: ServerThread, envoy: bool) -> None:
    for _ in range(3):  # again and again: a reused decision must not cross peers
        assert ask(mesh, GATEWAY, envoy) == (200, CHECKOUT)
        assert ask(mesh, "127.0.0.1", envoy)[0] == 401


def test_decide_endpoint_applies_the_same_rule(mesh: ServerThread) -> None:
    body = (
        '{"method": "GET", "path": "/api/orders", "headers": '
        f'{{"X-Forwarded-Client-Cert": "URI={CHECKOUT}"}}}}'
    ).encode()
    trusted = request(
        mesh.port, "POST", "/v1/decide", {"Content-Type": "application/json"}, body, source=GATEWAY
    )
    assert trusted.json()["allow"] is True
    direct = request(mesh.port, "POST", "/v1/decide", {"Content-Type": "application/json"}, body)
    assert direct.json()["allow"] is False and direct.json()["reason"] == "authn.missing"
