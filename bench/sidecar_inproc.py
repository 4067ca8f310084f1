"""The sidecar's own cost per request, in process: no sockets, no kernel, no wrk.

One HttpConnection is fed whole requests (the bytes wrk sends to /v1/forward-auth
for GET /api/orders/7 of policies/retail) through `data_received`, with a transport
that only counts what is written. What is timed is everything the server does in
Python and its compiled modules: llhttp and its callbacks, the decision cache (or
the engine), metrics and the response. bench/http.sh measures the same requests
over TCP, where the kernel and the event loop take about twice as long again; this
measure repeats to about ±0.05 µs where that one moves by several percent.

    .venv/bin/python bench/sidecar_inproc.py [--calls 20000] [--rounds 7]

Pin it to a core (taskset -c 0) for steadier numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from sidecar_http import retail_with_fresh_key

from policyengine.ratelimit import limiter_from_url
from policyengine.server.app import App
from policyengine.server.config import ServerConfig
from policyengine.server.connection import HttpConnection
from policyengine.server.metrics import Metrics
from policyengine.server.reload import EngineHolder
from policyengine.server.state import ServerState
from policyengine.server.worker import build_engine


class CountingTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.writes = 0
        self.errors = 0  # answers other than 200: the timed requests must all be allowed

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.writes += 1
        if not bytes(data).startswith(b"200", 9):
            self.errors += 1

    def get_extra_info(self, name: str, default: object = None) -> object:
        return ("127.0.0.1", 40000) if name == "peername" else default


def connection(policy: Path, decision_cache: int) -> tuple[HttpConnection, CountingTransport]:
    config = ServerConfig(policy, nginx_mode=True, decision_cache=decision_cache)
    holder = EngineHolder(build_engine(config, limiter_from_url(None)))
    app = App(config, holder, Metrics(), None)
    conn = HttpConnection(ServerState(app, config.limits, config.trusted_proxies))
    transport = CountingTransport()
    conn.connection_made(transport)
    return conn, transport


def forward_auth(credential: str, order: int = 7) -> bytes:
    return (
        "GET /v1/forward-auth HTTP/1.1\r\nHost: 127.0.0.1:8181\r\n"
        f"X-Original-Method: GET\r\nX-Original-URI: /api/orders/{order}\r\n"
        f"{credential}\r\n\r\n"
    ).encode()


def time_requests(conn: HttpConnection, requests: list[bytes], rounds: int) -> float:
    """Median over rounds of the mean µs per request (each round sends `requests`)."""
    conn.data_received(requests[0])  # the first sighting; the second is kept (if reusable)
    conn.data_received(requests[0])
    means = []
    for _ in range(rounds):
        started = time.thread_time_ns()
        for request in requests:
            conn.data_received(request)
        means.append((time.thread_time_ns() - started) / len(requests) / 1000)
    return statistics.median(means)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        policy = Path(work) / "retail"
        token = retail_with_fresh_key(policy)
        credentials = {
            "JWT (RS256)": f"Authorization: Bearer {token}",
            "API key": "X-API-Key: test-key-alice",
        }
        print(
            f"{'µs per request, in process':<32}{'cache':>10}{'--decision-cache 0':>20}"
            f"{'new id each (cache on)':>24}"
        )
        for name, credential in credentials.items():
            row = []
            same = [forward_auth(credential)] * args.calls
            # a new order id in every request: no decision can be reused
            varied = [forward_auth(credential, order) for order in range(1, args.calls + 1)]
            for size, requests in ((10_000, same), (0, same), (10_000, varied)):
                conn, transport = connection(policy, size)
                row.append(time_requests(conn, requests, args.rounds))
                assert transport.writes == 2 + args.calls * args.rounds, "a request unanswered"
                assert transport.errors == 0, "a request refused"
            print(f"{'forward-auth, ' + name:<32}{row[0]:>10.2f}{row[1]:>20.2f}{row[2]:>24.2f}")


if __name__ == "__main__":
    main()
