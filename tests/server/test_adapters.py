"""From HTTP requests to engine Requests, per gateway convention; never an identity."""

from __future__ import annotations

import ipaddress
import json

import pytest

from policyengine.decision import Request
from policyengine.server.adapters import (
    Refusal,
    decide_request,
    envoy_request,
    forward_auth_request,
)
from policyengine.server.clientip import Peer
from policyengine.server.message import HttpRequest, combine


def http(
    method: str = "GET", target: str = "/v1/forward-auth", body: bytes = b"", **headers: str
) -> HttpRequest:
    pairs = [(name.replace("_", "-").encode(), value.encode()) for name, value in headers.items()]
    return HttpRequest(method, target, pairs, body, None)


def test_nginx_and_traefik_conventions_name_the_original_request() -> None:
    nginx = forward_auth_request(
        http(X_Original_Method="DELETE", X_Original_URI="/a?b=1"), "1.2.3.4"
    )
    traefik = forward_auth_request(http(X_Forwarded_Method="PUT", X_Forwarded_Uri="/c"), None)
    assert isinstance(nginx, Request) and (nginx.method, nginx.path) == ("DELETE", "/a?b=1")
    assert nginx.client_ip == "1.2.3.4" and nginx.identity is None
    assert isinstance(traefik, Request) and (traefik.method, traefik.path) == ("PUT", "/c")


def test_conflicting_conventions_are_refused_rather_than_guessed() -> None:
    # behind nginx a client can add X-Forwarded-Uri naming a path it may use
    forged = http(
        X_Original_Method="GET", X_Original_URI="/api/admin/delete", X_Forwarded_Uri="/api/public"
    )
    refusal = forward_auth_request(forged, None)
    assert isinstance(refusal, Refusal) and "conflicting" in refusal.message


def test_agreeing_conventions_are_fine() -> None:
    both = http(
        X_Original_Method="GET", X_Forwarded_Method="GET", X_Original_URI="/x", X_Forwarded_Uri="/x"
    )
    assert isinstance(forward_auth_request(both, None), Request)


def test_forward_auth_without_the_original_request_is_refused() -> None:
    assert isinstance(forward_auth_request(http(X_Original_URI="/x"), None), Refusal)
    assert isinstance(forward_auth_request(http(), None), Refusal)


def test_forward_auth_passes_a_forwarded_body_and_no_body_as_none() -> None:
    with_body = forward_auth_request(
        http("POST", body=b"{}", X_Forwarded_Method="POST", X_Forwarded_Uri="/o"), None
    )
    without = forward_auth_request(http(X_Forwarded_Method="POST", X_Forwarded_Uri="/o"), None)
    assert isinstance(with_body, Request) and with_body.body == b"{}"
    assert isinstance(without, Request) and without.body is None


def test_repeated_header_fields_are_joined_and_names_lowercased() -> None:
    headers = combine(
        [
            (b"Authorization", b"Bearer a"),
            (b"authorization", b"Bearer b"),
            (b"Cookie", b"a=1"),
            (b"COOKIE", b"b=2"),
            (b"X-Key", b"k"),
        ]
    )
    assert headers == {"authorization": "Bearer a, Bearer b", "cookie": "a=1; b=2", "x-key": "k"}


def test_envoy_path_is_what_follows_the_prefix() -> None:
    request = envoy_request(http("POST", "/v1/envoy/api/orders?x=1", b"{}"), "9.9.9.9")
    assert isinstance(request, Request)
    assert (request.method, request.path, request.body) == ("POST", "/api/orders?x=1", b"{}")
    root = envoy_request(http("GET", "/v1/envoy/"), None)
    assert isinstance(root, Request) and root.path == "/"
    assert envoy_request(http("GET", "/v1/envoyx/a"), None) is None


def decide(payload: object) -> Request | Refusal:
    return decide_request(http("POST", "/v1/decide", json.dumps(payload).encode()))


def test_decide_builds_the_request_it_is_given() -> None:
    request = decide(
        {
            "method": "POST",
            "path": "/o",
            "client_ip": "10.0.0.1",
            "headers": {"X-Key": "a", "Accept": ["x", "y"]},
            "body": {"n": 1},
        }
    )
    assert isinstance(request, Request)
    assert request.headers == {"x-key": "a", "accept": "x, y"}
    assert request.body == {"n": 1} and request.client_ip == "10.0.0.1"
    assert request.identity is None


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (
            {"method": "GET", "path": "/", "identity": {"subject": "root"}},
            "unknown field `identity`",
        ),
        ({"path": "/"}, "`method`"),
        ({"method": "GET"}, "`path`"),
        ({"method": "GET", "path": "/", "headers": {"a": 1}}, "header `a`"),
        ({"method": "GET", "path": "/", "headers": []}, "`headers`"),
        ({"method": "GET", "path": "/", "client_ip": 7}, "`client_ip`"),
        ([1], "JSON object"),
    ],
)
def test_decide_refuses_what_it_cannot_take(payload: object, message: str) -> None:
    refusal = decide(payload)
    assert isinstance(refusal, Refusal) and message in refusal.message


def test_decide_refuses_invalid_json() -> None:
    refusal = decide_request(http("POST", "/v1/decide", b'{"method": "GET", "method": "x"}'))
    assert isinstance(refusal, Refusal) and "JSON object" in refusal.message


def _from(peer_trusted: bool, **headers: str) -> HttpRequest:
    request = http(X_Original_Method="GET", X_Original_URI="/a", **headers)
    request.client = Peer(ipaddress.ip_address("10.0.0.5"), "10.0.0.5", peer_trusted)
    return request


def test_a_trusted_hops_forwarded_host_is_the_host() -> None:
    request = forward_auth_request(
        _from(True, Host="sidecar:8181", X_Forwarded_Host="api.example.test"), None
    )
    assert isinstance(request, Request) and request.headers["host"] == "api.example.test"
    # a list stays a list: refused by the engine as two Host fields are
    listed = forward_auth_request(_from(True, X_Forwarded_Host="a.test, b.test"), None)
    assert isinstance(listed, Request) and listed.headers["host"] == "a.test, b.test"


def test_an_untrusted_peers_forwarded_host_selects_nothing() -> None:
    for peer in (True, False):
        request = forward_auth_request(_from(peer, Host="api.example.test"), None)
        assert isinstance(request, Request) and request.headers["host"] == "api.example.test"
    request = forward_auth_request(
        _from(False, Host="api.example.test", X_Forwarded_Host="admin.example.test"), None
    )
    assert isinstance(request, Request) and request.headers["host"] == "api.example.test"


def test_envoy_names_the_host_itself() -> None:
    # Envoy's check request carries the original Host; an X-Forwarded-Host is the client's
    raw = _from(True, Host="api.example.test", X_Forwarded_Host="admin.example.test")
    raw.target = "/v1/envoy/a"
    request = envoy_request(raw, None)
    assert request is not None and request.headers["host"] == "api.example.test"
