"""Traefik's ForwardAuth middleware, as configured in docs/gateways/traefik/dynamic.yml.

Traefik is not packaged here, so this test builds the authorization request as
Traefik does (pkg/middlewares/auth/forward.go, v2.x and v3.x without
preserveRequestMethod/forwardBody), from the settings in the documented file, sends
it to the sidecar over a socket and applies Traefik's rules to the answer:

    GET <path of `address`> HTTP/1.1
    Host: <host of `address`>
    <every header of the original request but hop-by-hop ones>
    X-Forwarded-For: <the client's address; with trustForwardHeader: false, whatever
                      the client sent is replaced>
    X-Forwarded-Method: <original method>
    X-Forwarded-Proto, X-Forwarded-Host: <from the original request>
    X-Forwarded-Uri: <original path and query>

A 2xx allows: each `authResponseHeaders` name is deleted from the request to the app,
then set from the answer if the answer has it. Anything else goes to the client as
it is: status, headers, body.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest
import yaml
from server_support import (
    GATEWAY_DOCS,
    ServerThread,
    exchange,
    make_config,
    parse_response,
    write_policy,
)

from policyengine.server.clientip import TrustedProxies

CONFIG = yaml.safe_load((GATEWAY_DOCS / "traefik" / "dynamic.yml").read_text())
HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "te",
    "trailers",
    "transfer-encoding",
    "upgrade",
    "proxy-authorization",
    "proxy-authenticate",
}


@dataclass
class Outcome:
    status: int
    client_headers: dict[str, str]
    upstream_headers: dict[str, str]
    body: bytes


class Traefik:
    def __init__(self, port: int) -> None:
        middleware = CONFIG["http"]["middlewares"]["policyengine"]["forwardAuth"]
        address = urlsplit(middleware["address"])
        assert address.netloc == "127.0.0.1:8181"
        self.port = port
        self.path = address.path
        self.trust_forward_header = middleware["trustForwardHeader"]
        self.copied = [name.lower() for name in middleware["authResponseHeaders"]]
        assert CONFIG["http"]["routers"]["app"]["middlewares"] == ["policyengine"]

    def check_request(self, method: str, uri: str, headers: dict[str, str], client: str) -> bytes:
        forwarded = {
            name: value for name, value in headers.items() if name.lower() not in HOP_BY_HOP
        }
        prior = headers.get("X-Forwarded-For")
        trusted = self.trust_forward_header and prior
        forwarded["X-Forwarded-For"] = f"{prior}, {client}" if trusted else client
        forwarded.update(
            {
                "X-Forwarded-Method": method,
                "X-Forwarded-Proto": "http",
                "X-Forwarded-Host": headers["Host"],
                "X-Forwarded-Uri": uri,
            }
        )
        forwarded["Host"] = "127.0.0.1:8181"
        lines = [
            f"GET {self.path} HTTP/1.1",
            "Connection: close",
            *(f"{name}: {value}" for name, value in forwarded.items()),
        ]
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    def send(
        self,
        method: str,
        uri: str,
        headers: dict[str, str] | None = None,
        client: str = "127.0.0.2",
    ) -> Outcome:
        headers = {"Host": "shop.example", **(headers or {})}
        status, answer, body = parse_response(
            exchange(self.port, self.check_request(method, uri, headers, client))
        )
        if not 200 <= status < 300:
            return Outcome(status, answer, {}, body)
        upstream = {name.lower(): value for name, value in headers.items()}
        for name in self.copied:
            upstream.pop(name, None)
            if name in answer:
                upstream[name] = answer[name]
        return Outcome(status, {}, upstream, b"")


@pytest.fixture(scope="module")
def traefik(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Traefik]:
    policy = write_policy(tmp_path_factory.mktemp("traefik") / "policy")
    config = make_config(policy, trusted_proxies=TrustedProxies.parse(["127.0.0.1/32"]))
    with ServerThread(config) as running:
        yield Traefik(running.port)


def test_allow_sets_the_identity_for_the_app(traefik: Traefik) -> None:
    outcome = traefik.send(
        "GET", "/api/orders/7?x=1", {"X-API-Key": "key-alice", "X-Auth-Subject": "root"}
    )
    assert outcome.status == 200
    assert outcome.upstream_headers["x-auth-subject"] == "alice"
    assert outcome.upstream_headers["x-auth-roles"] == "user"


def test_an_anonymous_allow_overwrites_the_clients_identity_headers(traefik: Traefik) -> None:
    outcome = traefik.send(
        "GET", "/api/public", {"X-Auth-Subject": "root", "X-Auth-Roles": "admin"}
    )
    assert outcome.status == 200
    assert outcome.upstream_headers["x-auth-subject"] == ""
    assert outcome.upstream_headers["x-auth-roles"] == ""


def test_denials_reach_the_client(traefik: Traefik) -> None:
    missing = traefik.send("GET", "/api/orders/7")
    assert missing.status == 401 and missing.client_headers["www-authenticate"].startswith("ApiKey")
    assert traefik.send("DELETE", "/api/orders/7", {"X-API-Key": "key-alice"}).status == 403
    limited = [traefik.send("GET", "/api/limited", {"X-API-Key": "key-alice"}) for _ in range(3)]
    assert [o.status for o in limited] == [200, 200, 429]
    assert int(limited[-1].client_headers["retry-after"]) > 0
    assert traefik.send("GET", "/api/search?q=" + "x" * 20).status == 400


def test_forged_forwarded_headers_from_the_client_do_not_count(traefik: Traefik) -> None:
    assert traefik.send("GET", "/api/internal", {"X-Forwarded-For": "10.1.2.3"}).status == 403
    assert traefik.send("GET", "/api/local", {"X-Forwarded-For": "10.1.2.3"}).status == 200
    forged_uri = traefik.send("GET", "/api/orders/7", {"X-Original-URI": "/api/public"})
    assert forged_uri.status == 400


def test_the_host_traefik_serves_is_the_host_decided_on(traefik: Traefik) -> None:
    assert traefik.send("GET", "/api/hosted").status == 200  # Host: shop.example
    assert traefik.send("GET", "/api/hosted", {"Host": "evil.example"}).status == 421
    # trustForwardHeader: false, so Traefik writes X-Forwarded-Host from the Host it saw
    spoofed = {"Host": "evil.example", "X-Forwarded-Host": "shop.example"}
    assert traefik.send("GET", "/api/hosted", spoofed).status == 421
