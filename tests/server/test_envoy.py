"""Envoy's ext_authz HTTP service, as configured in docs/gateways/envoy/envoy.yaml.

Envoy is not packaged here, so this test builds the authorization request exactly as
Envoy does (source/extensions/filters/common/ext_authz/ext_authz_http_impl.cc and
source/extensions/filters/http/ext_authz/ext_authz.cc, v1.2x), from the settings in
the documented file, sends it to the sidecar over a socket, and applies Envoy's rules
to the answer. The request Envoy sends:

    <original method> <path_prefix><original path and query> HTTP/1.1
    host: <original :authority>
    content-length: <bytes of body sent, 0 without with_request_body>
    <each original header whose name matches allowed_headers, plus authorization>
    x-forwarded-for: <as the connection manager left it: use_remote_address appends
                      the downstream address>
    x-envoy-expected-rq-timeout-ms: <http_service timeout>

    <the body, when with_request_body and the request has one>

Answer handling: 200 allows; the headers matching allowed_upstream_headers are set on
the request to the app (replacing the client's), then those named in
x-envoy-auth-headers-to-remove are removed. 5xx or no answer: 403 to the client
(failure_mode_allow false). Anything else: that status, the body and the headers
matching allowed_client_headers (plus status, content-length, www-authenticate,
location) go to the client. A body over max_request_bytes gets Envoy's own 413.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

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

CONFIG = yaml.safe_load((GATEWAY_DOCS / "envoy" / "envoy.yaml").read_text())
ALWAYS_SENT = ("authorization", "host")
ALWAYS_TO_CLIENT = ("content-length", "www-authenticate", "location")


def ext_authz() -> dict[str, Any]:
    listener = CONFIG["static_resources"]["listeners"][0]
    manager = listener["filter_chains"][0]["filters"][0]["typed_config"]
    assert manager["use_remote_address"] is True
    authz = next(f for f in manager["http_filters"] if f["name"].endswith("ext_authz"))
    config: dict[str, Any] = authz["typed_config"]
    return config


def matches(patterns: list[dict[str, str]], name: str) -> bool:
    for pattern in patterns:
        if (
            ("exact" in pattern and name == pattern["exact"])
            or ("prefix" in pattern and name.startswith(pattern["prefix"]))
            or ("suffix" in pattern and name.endswith(pattern["suffix"]))
            or ("contains" in pattern and pattern["contains"] in name)
        ):
            return True
    return False


@dataclass
class Outcome:
    status: int  # what the client gets (200: the request went on to the app)
    client_headers: dict[str, str]
    upstream_headers: dict[str, str]  # what the app gets, on 200
    body: bytes


class Envoy:
    """The documented ext_authz filter, in front of the sidecar on `port`."""

    def __init__(self, port: int) -> None:
        config = ext_authz()
        service = config["http_service"]
        self.port = port
        self.prefix = service["path_prefix"]
        self.timeout_ms = round(float(service["server_uri"]["timeout"].rstrip("s")) * 1000)
        self.allowed = service["authorization_request"]["allowed_headers"]["patterns"]
        response = service["authorization_response"]
        self.to_upstream = response["allowed_upstream_headers"]["patterns"]
        self.to_client = response["allowed_client_headers"]["patterns"]
        self.max_body = config["with_request_body"]["max_request_bytes"]
        assert config["with_request_body"]["allow_partial_message"] is False
        assert config["failure_mode_allow"] is False

    def check_request(
        self, method: str, path: str, headers: dict[str, str], body: bytes, downstream: str
    ) -> bytes:
        original = {name.lower(): value for name, value in headers.items()}
        prior = original.get("x-forwarded-for")
        original["x-forwarded-for"] = f"{prior}, {downstream}" if prior else downstream
        lines = [
            f"{method} {self.prefix}{path} HTTP/1.1",
            f"host: {original['host']}",
            f"content-length: {len(body)}",
        ]
        lines += [
            f"{name}: {value}"
            for name, value in original.items()
            if name != "host" and (name in ALWAYS_SENT or matches(self.allowed, name))
        ]
        lines.append(f"x-envoy-expected-rq-timeout-ms: {self.timeout_ms}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + body

    def send(
        self,
        method: str,
        path: str,
        headers: dict[str, str] | None = None,
        body: bytes = b"",
        downstream: str = "127.0.0.2",
    ) -> Outcome:
        headers = {"Host": "shop.example", **(headers or {})}
        if len(body) > self.max_body:
            return Outcome(413, {}, {}, b"Payload Too Large")
        answer = exchange(
            self.port,
            self.check_request(method, path, headers, body, downstream).replace(
                b"HTTP/1.1\r\n", b"HTTP/1.1\r\nconnection: close\r\n", 1
            ),
        )
        status, response_headers, response_body = parse_response(answer)
        if status >= 500:
            return Outcome(403, {}, {}, b"")
        if status != 200:
            to_client = {
                name: value
                for name, value in response_headers.items()
                if name in ALWAYS_TO_CLIENT or matches(self.to_client, name)
            }
            return Outcome(status, to_client, {}, response_body)
        upstream = {name.lower(): value for name, value in headers.items()}
        for name, value in response_headers.items():
            if matches(self.to_upstream, name):
                upstream[name] = value
        removed = response_headers.get("x-envoy-auth-headers-to-remove", "")
        for name in filter(None, (part.strip() for part in removed.split(","))):
            upstream.pop(name, None)
        return Outcome(200, {}, upstream, b"")


@pytest.fixture(scope="module")
def envoy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Envoy]:
    policy = write_policy(tmp_path_factory.mktemp("envoy") / "policy")
    config = make_config(policy, trusted_proxies=TrustedProxies.parse(["127.0.0.1/32"]))
    with ServerThread(config) as running:
        yield Envoy(running.port)


def test_the_request_envoy_sends() -> None:
    sent = Envoy(8181).check_request(
        "POST",
        "/api/orders?src=web",
        {
            "Host": "shop.example",
            "X-API-Key": "k",
            "Authorization": "Bearer t",
            "User-Agent": "curl",
            "Content-Type": "application/json",
        },
        b"{}",
        "198.51.100.7",
    )
    assert sent == (
        b"POST /v1/envoy/api/orders?src=web HTTP/1.1\r\n"
        b"host: shop.example\r\ncontent-length: 2\r\n"
        b"x-api-key: k\r\nauthorization: Bearer t\r\ncontent-type: application/json\r\n"
        b"x-forwarded-for: 198.51.100.7\r\nx-envoy-expected-rq-timeout-ms: 250\r\n\r\n{}"
    )


def test_allow_sets_the_identity_for_the_app(envoy: Envoy) -> None:
    outcome = envoy.send(
        "GET", "/api/orders/7", {"X-API-Key": "key-alice", "X-Auth-Subject": "root"}
    )
    assert outcome.status == 200
    assert outcome.upstream_headers["x-auth-subject"] == "alice"
    assert outcome.upstream_headers["x-auth-roles"] == "user"


def test_an_anonymous_allow_removes_the_clients_identity_headers(envoy: Envoy) -> None:
    outcome = envoy.send("GET", "/api/public", {"X-Auth-Subject": "root", "X-Auth-Roles": "admin"})
    assert outcome.status == 200
    assert "x-auth-subject" not in outcome.upstream_headers
    assert "x-auth-roles" not in outcome.upstream_headers


def test_denials_reach_the_client_with_their_headers(envoy: Envoy) -> None:
    missing = envoy.send("GET", "/api/orders/7")
    assert missing.status == 401 and missing.client_headers["www-authenticate"].startswith("ApiKey")
    assert envoy.send("DELETE", "/api/orders/7", {"X-API-Key": "key-alice"}).status == 403
    limited = [envoy.send("GET", "/api/limited", {"X-API-Key": "key-alice"}) for _ in range(3)]
    assert [o.status for o in limited] == [200, 200, 429]
    assert int(limited[-1].client_headers["retry-after"]) > 0
    assert "x-decision-id" in limited[-1].client_headers
    assert b'"ratelimit.exceeded"' in limited[-1].body


def test_bodies_are_checked(envoy: Envoy) -> None:
    json_headers = {"X-API-Key": "key-alice", "Content-Type": "application/json"}
    good = envoy.send("POST", "/api/orders", json_headers, b'{"productId":"ABCD1234","quantity":1}')
    assert good.status == 200
    bad = envoy.send("POST", "/api/orders", json_headers, b'{"productId":"ABCD1234","quantity":0}')
    assert bad.status == 400 and b'"/quantity"' in bad.body
    big = envoy.send(
        "POST",
        "/api/orders",
        json_headers,
        b'{"productId":"ABCD1234","quantity":1,"x":"' + b"a" * 2000 + b'"}',
    )
    assert big.status == 413 and b'"input.too_large"' in big.body


def test_forwarded_for_spoofing_from_the_client_is_ignored(envoy: Envoy) -> None:
    spoofed = {"X-Forwarded-For": "10.1.2.3"}
    assert envoy.send("GET", "/api/internal", spoofed, downstream="127.0.0.2").status == 403
    assert envoy.send("GET", "/api/local", spoofed, downstream="127.0.0.2").status == 200


def test_the_host_envoy_serves_is_the_host_decided_on(envoy: Envoy) -> None:
    assert envoy.send("GET", "/api/hosted").status == 200  # Host: shop.example
    other = envoy.send("GET", "/api/hosted", {"Host": "evil.example"})
    assert other.status == 421 and b'"route.host_mismatch"' in other.body
    # x-forwarded-host is not among allowed_headers: a client's copy never arrives
    assert not matches(ext_authz()["http_service"]["authorization_request"]["allowed_headers"]
                       ["patterns"], "x-forwarded-host")  # fmt: skip
    spoofed = {"Host": "evil.example", "X-Forwarded-Host": "shop.example"}
    assert envoy.send("GET", "/api/hosted", spoofed).status == 421
