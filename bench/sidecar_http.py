"""The sidecar over HTTP against nginx, side by side in one run, with wrk.

Every server runs pinned to one core (taskset) and wrk to the other, so the
server side of each row gets the same single core:

- nginx `return 200`: the ceiling for one core answering HTTP/1.1;
- `policyengine serve` (one worker) on /v1/forward-auth for GET /api/orders/7 of
  policies/retail, an RBAC route (`allow role user`): with a bearer JWT (RS256,
  verified once, then from the token cache) and with an API key; as served by
  default (wrk repeats one request, so after the second one every decision comes
  from the decision cache), with `--decision-cache 0` (every request decided), and
  by default with a new order id in every request (no request comes back: the
  cache's cost when it never helps);
- end to end through nginx `auth_request`, configured as docs/gateways/nginx/
  says, in front of an nginx `return 200` app: once with policyengine as the auth
  server, once with another nginx `return 200` as the auth server (the ceiling of
  that set-up). Both front and auth servers share the server core.
- Envoy's check, over HTTP (/v1/envoy, wrk) and over gRPC (`--grpc-port`, h2load with
  the same number of requests in flight: --connections streams over
  --connections/--grpc-streams HTTP/2 connections, as Envoy multiplexes; see
  bench/sidecar_grpc.py), with an API key and a JWT, side by side, and the gRPC rows'
  ratio to the HTTP one;
- with --servers, the measurement behind the server's design: a bare asyncio
  Protocol on httptools + uvloop, and uvicorn (httptools, uvloop) with a bare ASGI
  app, each answering an empty 200.

- rate limits (bench/sidecar_limits.py; --skip-limits leaves them out): an open and a
  limited route (memory store, Redis store) at each of --limit-connections, with wrk's
  non-2xx and socket-error counts.

Rounds run every row in turn, so a busy machine slows all rows alike; the table
shows medians over rounds and the ratios the issue sets targets for.

    bench/http.sh [--duration 5] [--rounds 3] [--connections 50] [--servers]
                  [--limit-connections 50,300] [--skip-limits | --only-limits]
    bench/http.sh --uncached | --mix | --scaling [--duration 5] [--rounds 3]   (sidecar_mix.py)
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sidecar_grpc import assert_allowed, check_message, framed, h2load
from sidecar_limits import LimitRow, redis_command, rows, run_wrk, write_policy
from sidecar_limits import report as report_limits

ROOT = Path(__file__).resolve().parents[1]
RETAIL = ROOT / "policies" / "retail"
NGINX_DOC = ROOT / "docs" / "gateways" / "nginx" / "policyengine.conf"
ROUTE = "/api/orders/7"
API_KEY = "test-key-alice"  # plaintext of a retail keys.yaml entry (role user)

RAW_PROTOCOL = """
import asyncio, sys, httptools, uvloop
OK = b"HTTP/1.1 200 OK\\r\\nContent-Length: 0\\r\\n\\r\\n"
class P(asyncio.Protocol):
    def connection_made(self, t): self.t, self.p = t, httptools.HttpRequestParser(self)
    def data_received(self, d): self.p.feed_data(d)
    def on_message_complete(self): self.t.write(OK)
async def main():
    s = await asyncio.get_running_loop().create_server(P, "127.0.0.1", int(sys.argv[1]))
    await s.serve_forever()
uvloop.run(main())
"""
ASGI_APP = """
async def app(scope, receive, send):
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})
"""


@dataclass
class Target:
    name: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    script: Path | None = None  # a wrk Lua script that varies each request
    grpc: tuple[int, Path] | None = None  # a gRPC Check row: the port and h2load's body
    rps: list[float] = field(default_factory=list)
    p50_us: list[float] = field(default_factory=list)
    p99_us: list[float] = field(default_factory=list)
    mean_us: list[float] = field(default_factory=list)  # h2load's only latency

    def median(self, values: list[float]) -> float:
        return statistics.median(values) if values else float("nan")


# -- processes ---------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"a server exited early: {' '.join(map(str, process.args))}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listens on port {port}")


@contextmanager
def started(
    command: list[str], port: int, core: int, **kwargs: object
) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(
        ["taskset", "-c", str(core), *command],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        **kwargs,
    )  # type: ignore[call-overload]
    try:
        wait_for(port, process)
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def nginx_conf(workdir: Path, body: str) -> Path:
    workdir.mkdir(parents=True)
    (workdir / "tmp").mkdir()
    temp = workdir / "tmp"
    conf = workdir / "nginx.conf"
    conf.write_text(f"""
worker_processes 1;
error_log {workdir}/error.log error;
pid {workdir}/nginx.pid;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path {temp}; proxy_temp_path {temp}; fastcgi_temp_path {temp};
    uwsgi_temp_path {temp}; scgi_temp_path {temp};
    {body}
}}
""")
    return conf


def nginx(conf: Path, port: int, core: int) -> AbstractContextManager[subprocess.Popen[bytes]]:
    command = ["/usr/sbin/nginx", "-p", str(conf.parent), "-c", str(conf), "-g", "daemon off;"]
    return started(command, port, core)


def return_200(workdir: Path, port: int) -> Path:
    return nginx_conf(
        workdir, f"server {{ listen 127.0.0.1:{port}; location / {{ return 200; }} }}"
    )


def auth_front(workdir: Path, port: int, sidecar: int, app: int) -> Path:
    text = NGINX_DOC.read_text()
    for documented, actual in (("8181", sidecar), ("9000", app), ("8080", port)):
        text = text.replace(f"127.0.0.1:{documented}", f"127.0.0.1:{actual}")
    return nginx_conf(workdir, text)


# -- the policy and its token ------------------------------------------------------------
def retail_with_fresh_key(directory: Path) -> str:
    """A copy of policies/retail whose JWT key is one we hold; returns a user's token."""
    shutil.copytree(RETAIL, directory)
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    (directory / "jwt_rs256.pub.pem").write_bytes(public)
    now = int(time.time())
    claims = {
        "iss": "https://idp.example.test",
        "aud": "retail-api",
        "sub": "carol",
        "roles": ["user"],
        "iat": now - 60,
        "exp": now + 3600,
    }
    return jwt.encode(claims, private, algorithm="RS256")


# -- wrk ---------------------------------------------------------------------------------
_UNITS = {"us": 1.0, "ms": 1000.0, "s": 1_000_000.0}


def wrk(target: Target, duration: float, connections: int, core: int, streams: int) -> None:
    if target.grpc is not None:
        port, data = target.grpc
        clients = max(1, connections // streams)
        rps, mean_us = h2load(port, data, duration, clients, min(streams, connections), core)
        target.rps.append(rps)
        target.mean_us.append(mean_us)
        return
    command = [
        "taskset",
        "-c",
        str(core),
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{duration:g}s",
        "--latency",
        target.url,
    ]
    for name, value in target.headers.items():
        command += ["-H", f"{name}: {value}"]
    if target.script is not None:
        command += ["-s", str(target.script)]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in output or "Socket errors" in output:
        raise SystemExit(f"{target.name}: wrk saw errors or non-2xx answers:\n{output}")
    target.rps.append(float(re.search(r"Requests/sec:\s+([\d.]+)", output)[1]))  # type: ignore[index]
    for percent, values in (("50", target.p50_us), ("99", target.p99_us)):
        match = re.search(rf"^\s+{percent}%\s+([\d.]+)(us|ms|s)$", output, re.MULTILINE)
        assert match, output
        values.append(float(match[1]) * _UNITS[match[2]])


def report(targets: list[Target], args: argparse.Namespace) -> None:
    by_name = {t.name: t for t in targets}
    ceiling = by_name["nginx return 200"].median(by_name["nginx return 200"].rps)
    print(
        f"\nwrk -t1 -c{args.connections} -d{args.duration}s, medians of {args.rounds} "
        f"rounds; servers on core {args.server_core}, wrk on core {args.client_core}; "
        f"Python {sys.version.split()[0]}, {os.cpu_count()} cores\n"
    )
    print(f"{'':<52}{'req/s':>10}{'p50':>10}{'p99':>10}{'vs nginx':>10}")
    for t in targets:
        rps = t.median(t.rps)
        latency = (
            f"{t.median(t.p50_us):>8.0f}µs{t.median(t.p99_us):>8.0f}µs"
            if not t.mean_us
            else f"{'mean ' + format(t.median(t.mean_us), '.0f') + 'µs':>20}"
        )
        print(f"{t.name:<52}{rps:>10.0f}{latency}{rps / ceiling:>10.2f}")
    e2e = by_name["nginx auth_request -> policyengine (JWT)"]
    base = by_name["nginx auth_request -> nginx return 200"]
    nginx = by_name["nginx return 200"]
    print(
        "\nratios, each the median of the rounds' own ratios (a round times nginx and the"
        " sidecar\nseconds apart, so a slow spell of the machine cancels out; targets:"
        " forward-auth >= 0.70\nof nginx return 200, p99 < 2 ms; end to end >= 0.90):"
    )
    for name in (
        "policyengine forward-auth, JWT (RS256, cached)",
        "policyengine forward-auth, API key",
        "  the same, --decision-cache 0: JWT",
        "  the same, --decision-cache 0: API key",
        "  a new order id per request (no reuse): JWT",
        "  the same, --decision-cache 0",
    ):
        t = by_name[name]
        ratios = [rps / ceiling_rps for rps, ceiling_rps in zip(t.rps, nginx.rps, strict=True)]
        print(
            f"  {name}: {statistics.median(ratios):.2f} of nginx return 200 "
            f"(rounds {min(ratios):.2f}-{max(ratios):.2f}), "
            f"p99 {t.median(t.p99_us) / 1000:.2f} ms"
        )
    ratios = [rps / base_rps for rps, base_rps in zip(e2e.rps, base.rps, strict=True)]
    print(
        f"  end to end through nginx auth_request: {statistics.median(ratios):.2f} of the "
        f"nginx-auth set-up (rounds {min(ratios):.2f}-{max(ratios):.2f})"
    )
    print("\nEnvoy's check over gRPC against the same check over HTTP (/v1/envoy):")
    for grpc_name, http_name in GRPC_PAIRS:
        t, base = by_name[grpc_name], by_name[http_name]
        ratios = [rps / http_rps for rps, http_rps in zip(t.rps, base.rps, strict=True)]
        print(
            f"  {grpc_name.strip()}: {t.median(t.rps):.0f} req/s, "
            f"{statistics.median(ratios):.2f} of `{http_name.strip()}` "
            f"(rounds {min(ratios):.2f}-{max(ratios):.2f})"
        )


GRPC_PAIRS = (
    ("policyengine Envoy gRPC Check, API key", "policyengine Envoy /v1/envoy (HTTP), API key"),
    ("policyengine Envoy gRPC Check, JWT (cached)", "policyengine Envoy /v1/envoy (HTTP), JWT"),
    ("  the same, --decision-cache 0: gRPC, JWT", "  the same, --decision-cache 0: HTTP, JWT"),
)


def envoy_targets(
    work: Path, http: tuple[int, int], grpc: tuple[int, int], token: str
) -> list[Target]:
    """The /v1/envoy and gRPC Check rows: the same request, the same credentials."""
    rows = []
    for label, cached, headers in (
        ("API key", True, {"X-API-Key": API_KEY}),
        ("JWT", True, {"Authorization": f"Bearer {token}"}),
        ("JWT", False, {"Authorization": f"Bearer {token}"}),
    ):
        index = 0 if cached else 1
        http_port, grpc_port = http[index], grpc[index]
        message = check_message(ROUTE, headers)
        assert_allowed(grpc_port, message)
        data = framed(work, f"check-{label.replace(' ', '-')}-{cached}", message)
        url = f"http://127.0.0.1:{http_port}/v1/envoy{ROUTE}"
        forwarded = headers | {"X-Forwarded-For": "198.51.100.7"}
        if cached:
            jwt_suffix = " (cached)" if label == "JWT" else ""
            http_name = f"policyengine Envoy /v1/envoy (HTTP), {label}"
            grpc_name = f"policyengine Envoy gRPC Check, {label}{jwt_suffix}"
        else:
            http_name = f"  the same, --decision-cache 0: HTTP, {label}"
            grpc_name = f"  the same, --decision-cache 0: gRPC, {label}"
        rows.append(Target(http_name, url, forwarded))
        rows.append(Target(grpc_name, f"grpc://127.0.0.1:{grpc_port}", grpc=(grpc_port, data)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--server-core", type=int, default=0)
    parser.add_argument("--client-core", type=int, default=1)
    parser.add_argument("--limit-connections", default="50,300")
    parser.add_argument(
        "--grpc-streams",
        type=int,
        default=10,
        help="concurrent streams per HTTP/2 connection in the gRPC rows",
    )
    parser.add_argument("--skip-limits", action="store_true")
    parser.add_argument("--only-limits", action="store_true", help="the rate-limit rows alone")
    parser.add_argument(
        "--servers",
        action="store_true",
        help="also time a bare httptools Protocol and uvicorn (needs uvicorn)",
    )
    args = parser.parse_args()
    for tool in ("wrk", "h2load", "taskset", "/usr/sbin/nginx"):
        if shutil.which(tool) is None:
            raise SystemExit(
                f"{tool} is needed (Debian: apt-get install wrk nghttp2-client nginx util-linux)"
            )
    core = args.server_core
    with tempfile.TemporaryDirectory(prefix="pe-bench-http-") as tmp, ExitStack() as stack:
        work = Path(tmp)
        token = retail_with_fresh_key(work / "retail")
        app, sidecar, uncached, auth_nginx, front_pe, front_base = (free_port() for _ in range(6))
        grpc_ports = (free_port(), free_port())
        stack.enter_context(nginx(return_200(work / "app", app), app, core))
        stack.enter_context(nginx(return_200(work / "auth", auth_nginx), auth_nginx, core))
        for port, grpc_port, extra in (
            (sidecar, grpc_ports[0], []),
            (uncached, grpc_ports[1], ["--decision-cache", "0"]),
        ):
            command = serve_command(work / "retail", port, [*extra, "--grpc-port", str(grpc_port)])
            stack.enter_context(started(command, port, core))
        stack.enter_context(
            nginx(auth_front(work / "front-pe", front_pe, sidecar, app), front_pe, core)
        )
        stack.enter_context(
            nginx(auth_front(work / "front-base", front_base, auth_nginx, app), front_base, core)
        )
        bearer = {"Authorization": f"Bearer {token}"}
        original = {"X-Original-Method": "GET", "X-Original-URI": ROUTE}
        fa = f"http://127.0.0.1:{sidecar}/v1/forward-auth"
        fa_uncached = f"http://127.0.0.1:{uncached}/v1/forward-auth"
        api_key = {"X-API-Key": API_KEY}
        targets = [
            Target("nginx return 200", f"http://127.0.0.1:{app}/"),
            Target("policyengine forward-auth, JWT (RS256, cached)", fa, original | bearer),
            Target("policyengine forward-auth, API key", fa, original | api_key),
            Target("  the same, --decision-cache 0: JWT", fa_uncached, original | bearer),
            Target("  the same, --decision-cache 0: API key", fa_uncached, original | api_key),
            Target(
                "  a new order id per request (no reuse): JWT",
                fa,
                original | bearer,
                script=new_order_each_request(work),
            ),
            Target(
                "  the same, --decision-cache 0",
                fa_uncached,
                original | bearer,
                script=new_order_each_request(work),
            ),
            Target(
                "nginx auth_request -> policyengine (JWT)",
                f"http://127.0.0.1:{front_pe}{ROUTE}",
                bearer,
            ),
            Target(
                "nginx auth_request -> nginx return 200",
                f"http://127.0.0.1:{front_base}{ROUTE}",
                bearer,
            ),
        ]
        targets += envoy_targets(work, (sidecar, uncached), grpc_ports, token)
        if args.servers:
            targets += peer_servers(stack, work, core)
        limit_rows = [] if args.skip_limits else limit_sidecars(stack, work, args)
        if args.only_limits:
            targets = []
        for target in targets:  # warm up: caches, connections, CPU frequency
            wrk(target, 1, args.connections, args.client_core, args.grpc_streams)
            target.rps.clear(), target.p50_us.clear(), target.p99_us.clear()
            target.mean_us.clear()
        for row in limit_rows:
            run_wrk(row, 1, args.client_core)
            row.rps.clear(), row.p99_us.clear(), row.non_2xx.clear(), row.socket_errors.clear()
        for _ in range(args.rounds):
            for target in targets:
                wrk(target, args.duration, args.connections, args.client_core, args.grpc_streams)
            for row in limit_rows:
                run_wrk(row, args.duration, args.client_core)
        if targets:
            report(targets, args)
        if limit_rows:
            report_limits(limit_rows, args.duration, args.rounds)


def limit_sidecars(stack: ExitStack, work: Path, args: argparse.Namespace) -> list[LimitRow]:
    """The memory and Redis sidecars on the limits policy, and their rows."""
    policy, core = work / "limits", args.server_core
    write_policy(policy)
    redis_port, memory, shared = free_port(), free_port(), free_port()
    (work / "redis").mkdir()
    redis = stack.enter_context(
        started(redis_command(redis_port, work / "redis"), redis_port, core)
    )
    redis_url = ["--redis", f"redis://127.0.0.1:{redis_port}/0"]
    alone = stack.enter_context(started(serve_command(policy, memory, []), memory, core))
    with_redis = stack.enter_context(
        started(serve_command(policy, shared, redis_url), shared, core)
    )
    connections = [int(n) for n in args.limit_connections.split(",")]
    return rows((memory, (alone.pid,)), (shared, (with_redis.pid, redis.pid)), connections)


def new_order_each_request(work: Path) -> Path:
    """A wrk script that sends X-Original-URI /api/orders/<random id> on every request."""
    script = work / "new-order.lua"
    script.write_text(
        "request = function()\n"
        '  wrk.headers["X-Original-URI"] = "/api/orders/" .. math.random(1, 1000000000)\n'
        "  return wrk.format()\n"
        "end\n"
    )
    return script


def serve_command(policy: Path, port: int, extra: list[str]) -> list[str]:
    return [
        *(sys.executable, "-m", "policyengine", "serve", str(policy), "--port", str(port)),
        *("--nginx-mode", "--trusted-proxy", "127.0.0.1/32", "--log-level", "warning"),
        *extra,
    ]


def peer_servers(stack: ExitStack, work: Path, core: int) -> list[Target]:
    raw, asgi = free_port(), free_port()
    stack.enter_context(started([sys.executable, "-c", RAW_PROTOCOL, str(raw)], raw, core))
    (work / "bench_asgi.py").write_text(ASGI_APP)
    stack.enter_context(
        started(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "bench_asgi:app",
                "--port",
                str(asgi),
                "--loop",
                "uvloop",
                "--http",
                "httptools",
                "--no-access-log",
                "--log-level",
                "warning",
            ],
            asgi,
            core,
            cwd=work,
        )
    )
    return [
        Target("bare asyncio Protocol, httptools + uvloop", f"http://127.0.0.1:{raw}/"),
        Target("uvicorn + bare ASGI app (httptools, uvloop)", f"http://127.0.0.1:{asgi}/"),
    ]


if __name__ == "__main__":
    main()
