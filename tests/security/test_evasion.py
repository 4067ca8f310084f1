"""Rate-limit evasion and forwarded-header spoofing, in process and over the socket.

`/limited` allows 3 requests a minute per client address, `/limited-key` 3 per API
key. An evasion is a 4th request that is not 429. Server-level cases come from
127.0.0.2, which the sidecar does not trust, or from 127.0.0.1, its trusted gateway.
"""

from __future__ import annotations

import itertools
from dataclasses import replace

import pytest
from security_support import TRUSTED_PEER, UNTRUSTED_PEER, Case, forward_auth, send

from policyengine import Engine, Request

SPELLINGS = [
    "/limited",
    "/limited/",
    "//limited",
    "/./limited",
    "/x/../limited",
    "/%6cimited",
    "/limited?page=2",
    "http://other.example/limited",
]


def _limited(target: str, client: str, method: str = "GET", **headers: str) -> Case:
    return Case("limited", method, target, 0, "", "", tuple(headers.items()), client_ip=client)


@pytest.mark.parametrize("spelling", SPELLINGS[1:])
def test_every_spelling_of_a_path_draws_on_one_counter(engine: Engine, spelling: str) -> None:
    for target in ("/limited", "/limited/", spelling):
        assert engine.decide(Request("GET", target, client_ip="198.51.100.1")).allow
    decision = engine.decide(Request("GET", spelling, client_ip="198.51.100.1"))
    assert (decision.status, decision.reason.value) == (429, "ratelimit.exceeded")


def test_head_counts_like_get(engine: Engine) -> None:
    for method in ("GET", "HEAD", "GET"):
        assert engine.decide(Request(method, "/limited", client_ip="198.51.100.2")).allow
    assert engine.decide(Request("HEAD", "/limited", client_ip="198.51.100.2")).status == 429


def test_rotating_forwarded_headers_do_not_reset_the_engine_count(engine: Engine) -> None:
    """The engine keys on the address it is given; it never reads X-Forwarded-For."""
    for n in range(3):
        headers = {"X-Forwarded-For": f"10.0.0.{n}", "X-Real-IP": f"10.0.1.{n}"}
        assert engine.decide(Request("GET", "/limited", headers, client_ip="198.51.100.3")).allow
    headers = {"X-Forwarded-For": "10.9.9.9", "Forwarded": "for=10.9.9.9"}
    decision = engine.decide(Request("GET", "/limited", headers, client_ip="198.51.100.3"))
    assert decision.status == 429


def test_key_header_spellings_draw_on_one_counter(engine: Engine) -> None:
    names = ["X-API-Key", "x-api-key", "X-API-KEY", "X-Api-Key"]
    decisions = [
        engine.decide(Request("GET", "/limited-key", {name: "key-alice"}, client_ip=f"192.0.2.{i}"))
        for i, name in enumerate(names)
    ]
    assert [d.status for d in decisions] == [200, 200, 200, 429]


def test_a_key_in_another_case_is_no_fresh_counter(engine: Engine) -> None:
    """`KEY-ALICE` is not alice's key: a 401, not three more requests."""
    for _ in range(3):
        engine.decide(Request("GET", "/limited-key", {"X-API-Key": "key-alice"}))
    decision = engine.decide(Request("GET", "/limited-key", {"X-API-Key": "KEY-ALICE"}))
    assert decision.status == 401


def test_anonymous_callers_without_an_address_share_a_counter(engine: Engine) -> None:
    """No client address (a misconfigured gateway) is one key, never unlimited."""
    statuses = [engine.decide(Request("GET", "/limited")).status for _ in range(4)]
    assert statuses == [200, 200, 200, 429]


# -- over the socket -----------------------------------------------------------------------------


def test_rotating_x_forwarded_for_from_an_untrusted_peer(server_port: int) -> None:
    """A client talking to the sidecar directly is its peer address, whatever it claims."""
    statuses = []
    for n in range(5):
        case = _limited("/limited", f"10.0.0.{n}")  # sent as X-Forwarded-For
        reply = forward_auth(server_port, case, source=UNTRUSTED_PEER)
        statuses.append(reply.status)
    assert statuses == [200, 200, 200, 429, 429]


def test_every_spelling_over_http_draws_on_one_counter(server_port: int) -> None:
    client = "198.51.100.77"
    targets = itertools.chain(["/limited", "/limited/", "//limited"], SPELLINGS[3:])
    # an absolute-form target agrees with the host the gateway saw (else 400 bad host)
    cases = [
        replace(_limited(t, client), headers=(("X-Forwarded-Host", "other.example"),))
        for t in targets
    ]
    statuses = [forward_auth(server_port, case).status for case in cases]
    assert statuses[:3] == [200, 200, 200] and set(statuses[3:]) == {429}


@pytest.mark.parametrize(
    ("source", "headers", "status"),
    [
        (UNTRUSTED_PEER, {"X-Forwarded-For": "10.0.0.1"}, 403),
        (UNTRUSTED_PEER, {"X-Real-IP": "10.0.0.1"}, 403),
        (UNTRUSTED_PEER, {"Forwarded": "for=10.0.0.1"}, 403),
        (TRUSTED_PEER, {"X-Forwarded-For": "10.0.0.1"}, 200),  # the gateway is believed
        (TRUSTED_PEER, {"X-Real-IP": "10.0.0.1"}, 200),
        # the client prepended an address; the gateway appended the one it saw
        (TRUSTED_PEER, {"X-Forwarded-For": "10.0.0.1, 203.0.113.9"}, 403),
        (TRUSTED_PEER, {"X-Forwarded-For": "not-an-address"}, 403),
        (TRUSTED_PEER, {"X-Forwarded-For": "10.0.0.1, garbage"}, 403),
        (TRUSTED_PEER, {"Forwarded": "for=10.0.0.1"}, 403),  # RFC 7239 is not read at all
    ],
)
def test_forwarded_headers_count_only_from_the_trusted_gateway(
    server_port: int, source: str, headers: dict[str, str], status: int
) -> None:
    fields = (("X-Original-Method", "GET"), ("X-Original-URI", "/internal"), *headers.items())
    reply = send(server_port, "GET", "/v1/forward-auth", fields, source=source)
    assert reply.status == status, reply.body


@pytest.mark.parametrize(
    "headers",
    [
        # behind nginx (which sets X-Original-*), a client adds the Traefik/Caddy names
        {"X-Original-URI": "/api/admin/users", "X-Forwarded-Uri": "/public"},
        {"X-Original-Method": "DELETE", "X-Forwarded-Method": "GET"},
    ],
)
def test_conflicting_original_request_headers_are_refused(
    server_port: int, headers: dict[str, str]
) -> None:
    fields = {"X-Original-Method": "GET", "X-Original-URI": "/public", **headers}
    reply = send(server_port, "GET", "/v1/forward-auth", tuple(fields.items()))
    assert (reply.status, reply.reason()) == (400, "request.invalid")


def test_forward_auth_without_the_original_request_is_refused(server_port: int) -> None:
    reply = send(server_port, "GET", "/v1/forward-auth")
    assert (reply.status, reply.reason()) == (400, "request.invalid")
