"""The server on a real socket: endpoints, HTTP/1.1 behaviour, limits, timeouts."""

from __future__ import annotations

import contextlib
import json
import re
import socket
import time
from collections.abc import Callable
from pathlib import Path

from server_support import (
    ServerThread,
    exchange,
    forward_auth,
    make_config,
    read_all,
    request,
    write_policy,
)

from policyengine import Engine
from policyengine.server.config import DecisionLogConfig

ALICE = {"X-API-Key": "key-alice"}


def wait_until(check: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return False


def raw_get(path: str, *headers: str) -> bytes:
    lines = [f"GET {path} HTTP/1.1", "Host: pe", *headers, "", ""]
    return "\r\n".join(lines).encode()


# -- decisions ---------------------------------------------------------------------------
def test_forward_auth_allow_sends_the_identity_and_no_body(server: ServerThread) -> None:
    reply = request(
        server.port, "GET", "/v1/forward-auth", forward_auth("GET", "/api/orders/7", **ALICE)
    )
    assert reply.status == 200 and reply.body == b""
    assert reply.headers["X-Auth-Subject"] == "alice"
    assert reply.headers["X-Auth-Roles"] == "user"
    assert reply.headers["Content-Length"] == "0"


def test_forward_auth_denials_carry_status_headers_and_reason(server: ServerThread) -> None:
    missing = request(server.port, "GET", "/v1/forward-auth", forward_auth("GET", "/api/orders/7"))
    assert missing.status == 401 and missing.json()["reason"] == "authn.missing"
    assert missing.headers["WWW-Authenticate"].startswith("ApiKey")
    bad_key = request(
        server.port,
        "GET",
        "/v1/forward-auth",
        forward_auth("GET", "/api/orders/7", **{"X-API-Key": "nope"}),
    )
    assert bad_key.status == 401 and bad_key.json()["reason"] == "authn.invalid"
    forbidden = request(
        server.port, "GET", "/v1/forward-auth", forward_auth("DELETE", "/api/orders/7", **ALICE)
    )
    assert forbidden.status == 403 and forbidden.json()["reason"] == "authz.no_allow"
    assert forbidden.headers["X-Decision-Id"] == forbidden.json()["decision_id"]


def test_the_third_request_within_the_limit_is_429_with_retry_after(server: ServerThread) -> None:
    statuses = []
    for _ in range(3):
        reply = request(
            server.port, "GET", "/v1/forward-auth", forward_auth("GET", "/api/limited", **ALICE)
        )
        statuses.append(reply.status)
    assert statuses == [200, 200, 429]
    assert int(reply.headers["Retry-After"]) > 0
    assert reply.json()["reason"] == "ratelimit.exceeded"


def test_two_credentials_in_one_request_are_refused(server: ServerThread) -> None:
    # the two values are joined with ", " (RFC 9110): ambiguous, no winner is picked
    data = raw_get(
        "/v1/forward-auth",
        "X-Original-Method: GET",
        "X-Original-URI: /api/orders/7",
        "X-API-Key: key-alice",
        "X-API-Key: key-ops",
        "Connection: close",
    )
    assert exchange(server.port, data).startswith(b"HTTP/1.1 400 ")


def test_forwarded_for_from_an_untrusted_peer_is_ignored(server: ServerThread) -> None:
    spoofed = forward_auth(
        "GET", "/api/internal", **{"X-Forwarded-For": "10.1.2.3", "X-Real-IP": "10.1.2.3"}
    )
    assert request(server.port, "GET", "/v1/forward-auth", spoofed).status == 403
    # the same header from the configured proxy (127.0.0.9) is believed
    trusted = request(server.port, "GET", "/v1/forward-auth", spoofed, source="127.0.0.9")
    assert trusted.status == 200


def test_forward_auth_without_the_original_uri_is_a_400(server: ServerThread) -> None:
    reply = request(server.port, "GET", "/v1/forward-auth", {"X-Original-Method": "GET"})
    assert reply.status == 400 and reply.json()["reason"] == "request.invalid"


def test_decide_answers_200_with_the_decision(server: ServerThread) -> None:
    payload = {
        "method": "POST",
        "path": "/api/orders",
        "headers": {**ALICE, "Content-Type": "application/json"},
        "body": {"productId": "ABCD1234", "quantity": 0},
    }
    reply = request(server.port, "POST", "/v1/decide", body=json.dumps(payload).encode())
    decision = reply.json()
    assert reply.status == 200
    assert (decision["status"], decision["reason"]) == (400, "input.invalid")
    assert decision["errors"][0]["pointer"] == "/quantity"
    payload["body"] = json.dumps({"productId": "A" * 2000, "quantity": 1})
    assert (
        request(server.port, "POST", "/v1/decide", body=json.dumps(payload).encode()).json()[
            "status"
        ]
        == 413
    )


def test_decide_refuses_an_identity_from_the_request(server: ServerThread) -> None:
    payload = {
        "method": "DELETE",
        "path": "/api/orders/1",
        "identity": {"subject": "root", "roles": ["admin"]},
    }
    reply = request(server.port, "POST", "/v1/decide", body=json.dumps(payload).encode())
    assert reply.status == 400 and "identity" in reply.json()["message"]


def test_envoy_endpoint_decides_the_path_after_the_prefix(server: ServerThread) -> None:
    allowed = request(server.port, "GET", "/v1/envoy/api/orders/7", ALICE)
    assert allowed.status == 200 and allowed.headers["X-Auth-Subject"] == "alice"
    anonymous = request(server.port, "GET", "/v1/envoy/api/public")
    assert anonymous.headers["x-envoy-auth-headers-to-remove"] == "x-auth-subject, x-auth-roles"


# -- operations --------------------------------------------------------------------------
def test_health_readiness_metrics_and_unknown_paths(server: ServerThread) -> None:
    assert request(server.port, "GET", "/healthz").body == b"ok\n"
    assert request(server.port, "GET", "/readyz").status == 200
    request(server.port, "GET", "/v1/forward-auth", forward_auth("GET", "/api/public"))
    metrics = request(server.port, "GET", "/metrics").body.decode()
    assert (
        'policyengine_decisions_total{endpoint="forward-auth",reason="allow",'
        'route="GET /api/public",status="200"} 1.0'
    ) in metrics
    assert "policyengine_decision_duration_seconds_bucket" in metrics
    assert 'policyengine_reloads_total{result="error"} 0.0' in metrics
    assert "policyengine_limiter_checks_total" in metrics
    assert request(server.port, "GET", "/nope").status == 404
    assert request(server.port, "GET", "/v1/decide").status == 405


def test_head_gets_the_headers_without_the_body(server: ServerThread) -> None:
    data = raw_get("/healthz", "Connection: close").replace(b"GET", b"HEAD", 1)
    answer = exchange(server.port, data)
    assert answer.startswith(b"HTTP/1.1 200 OK") and answer.endswith(b"\r\n\r\n")
    assert b"Content-Length: 3" in answer


# -- HTTP/1.1 ----------------------------------------------------------------------------
def test_keep_alive_and_pipelined_requests_are_answered_in_order(server: ServerThread) -> None:
    first = raw_get("/v1/forward-auth", "X-Original-Method: GET", "X-Original-URI: /api/public")
    second = raw_get("/v1/forward-auth", "X-Original-Method: GET", "X-Original-URI: /api/orders/7")
    third = raw_get(
        "/v1/forward-auth",
        "X-Original-Method: DELETE",
        "X-Original-URI: /api/orders/7",
        "X-API-Key: key-alice",
    )
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(first + second + third)
        answer = read_all(sock, 1.0)
        assert re.findall(rb"HTTP/1.1 (\d{3}) ", answer) == [b"200", b"401", b"403"]
        sock.sendall(first)  # still open: keep-alive
        assert read_all(sock, 1.0).startswith(b"HTTP/1.1 200")


def test_malformed_http_gets_400_and_the_connection_closes(server: ServerThread) -> None:
    answer = exchange(server.port, b"GET / HTTP/1.1\r\nHost pe\r\n\r\n", wait=3)
    assert answer.startswith(b"HTTP/1.1 400 ") and b"Connection: close" in answer
    smuggled = (
        b"POST /v1/decide HTTP/1.1\r\nHost: pe\r\nContent-Length: 4\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    )
    assert exchange(server.port, smuggled, wait=3).startswith(b"HTTP/1.1 400 ")


def test_oversized_headers_and_bodies_are_refused(server: ServerThread) -> None:
    big_header = raw_get("/healthz", "X-Big: " + "a" * 9000)
    assert exchange(server.port, big_header, wait=3).startswith(b"HTTP/1.1 431 ")
    many = raw_get("/healthz", *[f"X-H{i}: v" for i in range(150)])
    assert exchange(server.port, many, wait=3).startswith(b"HTTP/1.1 431 ")
    declared = b"POST /v1/decide HTTP/1.1\r\nHost: pe\r\nContent-Length: 999999\r\n\r\n"
    assert exchange(server.port, declared, wait=3).startswith(b"HTTP/1.1 413 ")
    chunk = b"%x\r\n%s\r\n" % (3000, b"a" * 3000)
    chunked = (
        b"POST /v1/decide HTTP/1.1\r\nHost: pe\r\nTransfer-Encoding: chunked\r\n\r\n"
        + chunk * 2
        + b"0\r\n\r\n"
    )
    assert exchange(server.port, chunked, wait=3).startswith(b"HTTP/1.1 413 ")


def test_an_endless_header_is_cut_off_before_it_ends(server: ServerThread) -> None:
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nX-Endless: ")
        answer = b""
        for _ in range(20):  # 20 x 1 KiB, never ending the header
            try:
                sock.sendall(b"a" * 1024)
            except OSError:
                break
            time.sleep(0.01)
        answer = read_all(sock, 2.0)
    assert answer.startswith(b"HTTP/1.1 431 ")


def test_a_slow_client_is_timed_out(server: ServerThread) -> None:
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: pe\r\n")  # and never the end
        started = time.monotonic()
        answer = read_all(sock, 5.0)
        waited = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408 ") and b"Connection: close" in answer
    assert waited < 4.0


def test_idle_and_silent_connections_are_closed(server: ServerThread) -> None:
    with socket.create_connection(("127.0.0.1", server.port)) as silent:
        started = time.monotonic()
        assert read_all(silent, 5.0) == b""
        assert time.monotonic() - started < 4.0  # the request timeout (1 s), not idle
    with socket.create_connection(("127.0.0.1", server.port)) as idle:
        idle.sendall(raw_get("/healthz"))
        started = time.monotonic()
        assert read_all(idle, 6.0).startswith(b"HTTP/1.1 200")  # then closed when idle
        assert 1.5 < time.monotonic() - started < 5.0  # the idle timeout (2 s)


def test_a_client_that_never_reads_is_dropped(server: ServerThread) -> None:
    assert server.worker is not None
    connections = server.worker.state.connections
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.settimeout(0.2)
        flood = raw_get("/metrics") * 500
        sent = 0
        with contextlib.suppress(OSError):
            for _ in range(40):  # pipelined requests, never a byte read back
                sent += sock.send(flood)
        assert sent > 0 and wait_until(lambda: len(connections) == 1, timeout=2.0)
        assert wait_until(lambda: not connections, timeout=8.0)


def test_expect_100_continue_is_honoured(server: ServerThread) -> None:
    body = json.dumps({"method": "GET", "path": "/api/public"}).encode()
    head = (
        b"POST /v1/decide HTTP/1.1\r\nHost: pe\r\nExpect: 100-continue\r\n"
        b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body)
    )
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(head)
        assert sock.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(body)
        assert read_all(sock, 2.0).startswith(b"HTTP/1.1 200 OK")


# -- failing closed ----------------------------------------------------------------------
# an error where the app starts the engine's coroutine: tests/interpreted/test_internal_error.py


def test_a_subject_that_would_inject_a_header_fails_closed(tmp_path: Path) -> None:
    policy = write_policy(tmp_path / "p")
    keys = (
        (policy / "keys.yaml")
        .read_text()
        .replace("subject: alice", 'subject: "alice\\r\\nX-Admin: 1"')
    )
    (policy / "keys.yaml").write_text(keys)
    with ServerThread(make_config(policy)) as running:
        reply = request(
            running.port, "GET", "/v1/forward-auth", forward_auth("GET", "/api/orders/7", **ALICE)
        )
    assert reply.status == 500 and "X-Admin" not in reply.headers


# -- decision log ------------------------------------------------------------------------
def test_the_decision_log_has_the_facts_and_no_secrets(policy_dir: Path, tmp_path: Path) -> None:
    target = tmp_path / "decisions.jsonl"
    config = make_config(policy_dir, decision_log=DecisionLogConfig(str(target)))
    with ServerThread(config) as running:
        request(
            running.port,
            "GET",
            "/v1/forward-auth",
            forward_auth("GET", "/api/orders/7?token=s3cret&x=1", **ALICE),
        )
        request(
            running.port,
            "GET",
            "/v1/forward-auth",
            forward_auth("DELETE", "/api/orders/7", **ALICE),
        )
    text = target.read_text()
    assert "key-alice" not in text and "s3cret" not in text
    allowed, denied = (json.loads(line) for line in text.splitlines())
    assert allowed["path"] == "/api/orders/7?token&x" and allowed["subject"] == "alice"
    assert allowed["route"] == "GET /api/orders/{id:int}" and allowed["status"] == 200
    assert denied["reason"] == "authz.no_allow" and denied["method"] == "DELETE"
    assert set(denied) == {
        "time",
        "decision_id",
        "policy",
        "route",
        "method",
        "path",
        "subject",
        "status",
        "reason",
        "latency_us",
        "revision",
    }
    assert denied["policy"] == "gateway-test" and denied["latency_us"] >= 0
    # a directory, not a bundle: the policy's own revision
    assert denied["revision"] == Engine.load(policy_dir).policy.revision


def test_a_body_route_behind_a_bodyless_gateway(policy_dir: Path) -> None:
    """nginx, Caddy and Traefik forward no body: deny by default, or skip the body check
    (and only it) when the operator says so with --on-missing-body skip."""
    from policyengine.inputs import MissingBody

    order = forward_auth("POST", "/api/orders", **ALICE)
    with ServerThread(make_config(policy_dir)) as strict:
        denied = request(strict.port, "GET", "/v1/forward-auth", order)
    assert (denied.status, denied.json()["reason"]) == (400, "input.invalid")
    skipping = make_config(policy_dir, on_missing_body=MissingBody.SKIP)
    with ServerThread(skipping) as lenient:
        allowed = request(lenient.port, "GET", "/v1/forward-auth", order)
        anonymous = request(lenient.port, "GET", "/v1/forward-auth",
                            forward_auth("POST", "/api/orders"))  # fmt: skip
    assert allowed.status == 200
    assert anonymous.status == 401
