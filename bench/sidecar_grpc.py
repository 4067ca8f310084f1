"""The gRPC rows of bench/http.sh: Envoy's ext_authz Check, loaded with h2load.

h2load (Debian: nghttp2-client) is a C HTTP/2 load generator, as wrk is for HTTP/1.1,
so the client costs the server core nothing and the rows compare with wrk's: it sends
one framed CheckRequest (the one Envoy sends for GET /api/orders/7, as
envoy-grpc.yaml configures it) on `clients` connections with `streams` concurrent
streams each, as Envoy multiplexes its checks over a few HTTP/2 connections. gRPC
answers every call with HTTP 200 and puts its own status in the trailers, so before
the load one call is made with grpcio and must be an allow.

h2load reports the mean time per request, not percentiles: the rows show that.
"""

from __future__ import annotations

import re
import struct
import subprocess
from pathlib import Path

CHECK = "/envoy.service.auth.v3.Authorization/Check"
_UNITS = {"us": 1.0, "ms": 1000.0, "s": 1_000_000.0}


def check_message(path: str, headers: dict[str, str]) -> bytes:
    """A CheckRequest as Envoy builds it (pseudo-headers, every header, lowercased)."""
    from envoy.service.auth.v3.external_auth_pb2 import CheckRequest

    check = CheckRequest()
    http = check.attributes.request.http
    http.method, http.path, http.host, http.scheme = "GET", path, "shop.example", "http"
    http.headers.update(
        {
            ":method": "GET",
            ":path": path,
            ":authority": "shop.example",
            ":scheme": "http",
            "x-forwarded-for": "198.51.100.7",
            "x-request-id": "3f2a9c1e-5b7d-4e8f-a1c2-d3e4f5a6b7c8",
            **{name.lower(): value for name, value in headers.items()},
        }
    )
    return bytes(check.SerializeToString())


def framed(work: Path, name: str, message: bytes) -> Path:
    """The gRPC length-prefixed message h2load sends as each request's body."""
    path = work / f"{name}.grpc"
    path.write_bytes(b"\0" + struct.pack(">I", len(message)) + message)
    return path


def assert_allowed(port: int, message: bytes) -> None:
    import grpc
    from envoy.service.auth.v3.external_auth_pb2 import CheckRequest, CheckResponse

    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        call = channel.unary_unary(
            CHECK,
            request_serializer=CheckRequest.SerializeToString,
            response_deserializer=CheckResponse.FromString,
        )
        answer = call(CheckRequest.FromString(message), timeout=5)
    if answer.status.code != 0:
        raise SystemExit(f"the benchmark's CheckRequest is not allowed: {answer}")


def h2load(
    port: int, data: Path, duration: float, clients: int, streams: int, core: int
) -> tuple[float, float]:
    """Requests/s and the mean time per request in µs."""
    command = [
        *("taskset", "-c", str(core), "h2load", "-t1", f"-c{clients}", f"-m{streams}"),
        *(f"-D{duration:g}", "-d", str(data)),
        *("-H", "content-type: application/grpc", "-H", "te: trailers"),
        f"http://127.0.0.1:{port}{CHECK}",
    ]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    done = re.search(r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded", output)
    if done is None or done[1] != done[2] or done[1] == "0":
        raise SystemExit(f"h2load saw failed requests:\n{output}")
    rps = re.search(r"finished in [\d.]+s, ([\d.]+) req/s", output)
    mean = re.search(r"time for request:\s+\S+\s+\S+\s+([\d.]+)(us|ms|s)\s", output)
    assert rps and mean, output
    return float(rps[1]), float(mean[1]) * _UNITS[mean[2]]
