"""Decisions that wait (a JWKS fetch off the event loop) go on in a Task, in order.

The first request with a token makes the JWT block fetch its key set over HTTP in a
worker thread: the decision's coroutine yields, the server finishes it in a Task,
and the answer still comes back in request order on its connection.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from server_support import ServerThread, make_config, read_all, write_policy

POLICY = """
policy "jwks"
authn jwt {{
    issuer "https://idp.test"
    audience "api"
    algorithms ES256
    jwks url "http://127.0.0.1:{port}/jwks.json"
    subject claim "sub"
    roles claim "roles"
}}
role user
route GET /orders/{{id:int}} {{
    allow role user
}}
route GET /public {{
    allow anyone
}}
"""


@pytest.fixture
def idp() -> Iterator[tuple[int, ec.EllipticCurvePrivateKey, list[float]]]:
    key = ec.generate_private_key(ec.SECP256R1())
    jwk = json.loads(jwt.get_algorithm_by_name("ES256").to_jwk(key.public_key()))
    body = json.dumps({"keys": [{**jwk, "kid": "k1", "alg": "ES256"}]}).encode()
    fetched: list[float] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            time.sleep(0.3)  # a slow IdP: the event loop must not wait for it
            fetched.append(time.monotonic())
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1]), key, fetched
    finally:
        server.shutdown()
        server.server_close()


def test_a_waiting_decision_is_answered_in_order_without_blocking_others(
    tmp_path: Path, idp: tuple[int, ec.EllipticCurvePrivateKey, list[float]]
) -> None:
    port, key, fetched = idp
    policy = write_policy(tmp_path / "p", POLICY.format(port=port))
    now = int(time.time())
    claims = {
        "iss": "https://idp.test",
        "aud": "api",
        "sub": "carol",
        "roles": ["user"],
        "iat": now - 10,
        "exp": now + 600,
    }
    token = jwt.encode(claims, key, algorithm="ES256", headers={"kid": "k1"})

    def get(path: str, *headers: str) -> bytes:
        lines = [
            "GET /v1/forward-auth HTTP/1.1",
            "Host: pe",
            "X-Original-Method: GET",
            f"X-Original-URI: {path}",
            *headers,
            "",
            "",
        ]
        return "\r\n".join(lines).encode()

    with ServerThread(make_config(policy)) as server:
        with (
            socket.create_connection(("127.0.0.1", server.port)) as waiting,
            socket.create_connection(("127.0.0.1", server.port)) as other,
        ):
            started = time.monotonic()
            # pipelined: the token's decision waits for the IdP; the next one must not pass it
            waiting.sendall(get("/orders/7", f"Authorization: Bearer {token}") + get("/public"))
            other.sendall(get("/public", "Connection: close"))
            assert read_all(other, 2.0).startswith(b"HTTP/1.1 200")
            answered_other = time.monotonic()
            answer = read_all(waiting, 2.0)
        assert answered_other - started < 0.25  # the event loop kept answering
        assert fetched and fetched[0] - started >= 0.25
        assert re.findall(rb"HTTP/1.1 (\d{3}) ", answer) == [b"200", b"200"]
        assert b"X-Auth-Subject: carol" in answer.split(b"\r\n\r\n")[0]
