"""`serve --bundle`: a signed bundle polled over HTTP (ETag, 304) or from a file,
swapped without a failed request, refused when unsigned or tampered with."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from bundle_support import CLOSED, POLICY, write_keys, write_policy
from server_support import forward_auth, free_port, request, serve_process

from policyengine import Engine
from policyengine.bundle import build
from policyengine.bundle.signing import load_private_key

PUBLIC = forward_auth("GET", "/api/public")


class BundleServer:
    """The bundle at /fleet.tar.gz with an ETag; what each poll asked, and got."""

    def __init__(self) -> None:
        self.data = b""
        self.asked: list[tuple[str | None, int]] = []  # If-None-Match sent, status answered
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                etag = '"' + hashlib.sha256(outer.data).hexdigest()[:16] + '"'
                sent = self.headers.get("If-None-Match")
                if self.path != "/fleet.tar.gz":
                    status, body = 404, b""
                elif sent == etag:
                    status, body = 304, b""
                else:
                    status, body = 200, outer.data
                outer.asked.append((sent, status))
                self.send_response(status)
                if status != 404:
                    self.send_header("ETag", etag)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/fleet.tar.gz"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Path, Path]:
    return write_keys(tmp_path)


@pytest.fixture
def bundles() -> Iterator[BundleServer]:
    server = BundleServer()
    yield server
    server.close()


def signed(tmp_path: Path, key: Path, text: str, revision: str) -> bytes:
    return build(write_policy(tmp_path / revision, text), load_private_key(key), revision)[0]


def wait_for(check: object, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


def metrics_text(port: int) -> str:
    return request(port, "GET", "/metrics").body.decode()


def readyz(port: int) -> str:
    return request(port, "GET", "/readyz").body.decode()


def test_polled_bundles_swap_without_a_failed_request(
    tmp_path: Path, keys: tuple[Path, Path], bundles: BundleServer
) -> None:
    key, pub = keys
    bundles.data = signed(tmp_path, key, POLICY, "r1")
    log_file, stderr = tmp_path / "decisions.jsonl", tmp_path / "stderr.log"
    args = ["--bundle", bundles.url, "--bundle-public-key", str(pub), "--bundle-poll", "100ms",
            "--workers", "2", "--decision-log", str(log_file)]  # fmt: skip
    with serve_process(None, *args, stderr_path=stderr) as (_, port):
        assert readyz(port) == "ok r1\n"
        assert request(port, "GET", "/v1/forward-auth", PUBLIC).status == 200
        statuses: list[int] = []
        stop = threading.Event()

        def load() -> None:  # a client asking all along: every answer is a decision
            while not stop.is_set():
                statuses.append(request(port, "GET", "/v1/forward-auth", PUBLIC).status)

        client = threading.Thread(target=load)
        client.start()
        try:
            assert wait_for(
                lambda: (
                    (None, 304) not in bundles.asked
                    and any(status == 304 for _, status in bundles.asked)
                )
            )
            bundles.data = signed(tmp_path, key, CLOSED, "r2")
            assert wait_for(lambda: all(readyz(port) == "ok r2\n" for _ in range(6)))
            assert wait_for(lambda: statuses[-1:] == [403])
        finally:
            stop.set()
            client.join(10)
        assert set(statuses) <= {200, 403} and statuses[0] == 200
        # a tampered bundle is refused; r2 keeps serving
        tampered = bytearray(signed(tmp_path, key, POLICY, "r3"))
        bundles.data = bytes(tampered[:-40]) + bytes(40)
        assert wait_for(lambda: "bundle/" in stderr.read_text())
        assert readyz(port) == "ok r2\n"
        assert request(port, "GET", "/v1/forward-auth", PUBLIC).status == 403
        assert wait_for(lambda: "policyengine_reload_failing 2.0" in metrics_text(port))
        bundles.data = signed(tmp_path, key, CLOSED, "r2")  # the bundle server mended
        assert wait_for(lambda: "policyengine_reload_failing 0.0" in metrics_text(port))
        assert wait_for(
            lambda: (
                'policyengine_policy_revision{revision="r2"} 2.0'
                in request(port, "GET", "/metrics").body.decode()
            )
        )
    lines = [json.loads(line) for line in log_file.read_text().splitlines()]
    assert {line["revision"] for line in lines} == {"r1", "r2"}
    assert all(line["status"] == 403 for line in lines if line["revision"] == "r2")
    # ETags: a poll after the first sent the bundle's own, and got 304
    assert any(sent is not None and status == 304 for sent, status in bundles.asked)


def test_a_bundle_file_is_polled_too(tmp_path: Path, keys: tuple[Path, Path]) -> None:
    key, pub = keys
    bundle = tmp_path / "fleet.tar.gz"
    bundle.write_bytes(signed(tmp_path, key, POLICY, "f1"))
    args = [
        "--bundle",
        str(bundle),
        "--bundle-public-key",
        str(pub),
        "--bundle-poll",
        "0.1",
    ]
    with serve_process(None, *args) as (_, port):
        assert readyz(port) == "ok f1\n"
        replacement = tmp_path / "next.tar.gz"
        replacement.write_bytes(signed(tmp_path, key, CLOSED, "f2"))
        replacement.replace(bundle)
        assert wait_for(lambda: readyz(port) == "ok f2\n")


@pytest.mark.parametrize("problem", ["unsigned", "other key", "no key"])
def test_serve_refuses_to_start_on_a_bundle_it_cannot_trust(
    tmp_path: Path, keys: tuple[Path, Path], problem: str
) -> None:
    key, pub = keys
    policy = write_policy(tmp_path / "p")
    bundle = tmp_path / "fleet.tar.gz"
    bundle.write_bytes(build(policy, None if problem == "unsigned" else load_private_key(key))[0])
    if problem == "other key":
        pub = write_keys(tmp_path, name="other")[1]
    key_args = [] if problem == "no key" else ["--bundle-public-key", str(pub)]
    run = subprocess.run(
        [sys.executable, "-m", "policyengine", "serve", "--bundle", str(bundle), *key_args,
         "--port", str(free_port())],
        capture_output=True, timeout=30,
    )  # fmt: skip
    assert run.returncode == 2
    expected = {
        "unsigned": b"bundle/unsigned",
        "other key": b"bundle/bad-signature",
        "no key": b"--bundle-public-key",
    }
    assert expected[problem] in run.stderr


def test_a_directory_reports_the_policys_own_revision(tmp_path: Path) -> None:
    policy = write_policy(tmp_path / "p")
    revision = Engine.load(policy).policy.revision
    with serve_process(policy, "--reload-interval", "0.1") as (_, port):
        assert readyz(port) == f"ok {revision}\n"
        assert f'policyengine_policy_revision{{revision="{revision}"}} 1.0' in (
            request(port, "GET", "/metrics").body.decode()
        )
        (policy / "fleet.policy").write_text(CLOSED)
        assert wait_for(lambda: readyz(port) == f"ok {Engine.load(policy).policy.revision}\n")


@pytest.mark.parametrize("poll", ["5x", "0s", "-1", "soon"])
def test_a_bad_poll_interval_is_a_usage_error(
    tmp_path: Path, keys: tuple[Path, Path], poll: str
) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "policyengine", "serve", "--bundle", "x.tar.gz",
         "--bundle-public-key", str(keys[1]), "--bundle-poll", poll],
        capture_output=True, timeout=30,
    )  # fmt: skip
    assert run.returncode == 2 and b"--bundle-poll" in run.stderr
