"""`policyengine serve` as a process: reloads, signals, workers, a shared Redis store."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from server_support import (
    POLICY,
    forward_auth,
    free_port,
    read_all,
    redis_server,
    request,
    serve_process,
    write_policy,
)

from policyengine.cli import main

PUBLIC = forward_auth("GET", "/api/public")
CLOSED_PUBLIC = POLICY.replace(
    "route GET /api/public {\n    allow anyone", "route GET /api/public {\n    allow role admin"
)


def status_of(port: int, headers: dict[str, str]) -> int:
    return request(port, "GET", "/v1/forward-auth", headers).status


def wait_until(check: object, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return True
        time.sleep(0.1)
    return False


def children(pid: int) -> list[str]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    return found.stdout.split()


def metric(port: int, line_start: str) -> float:
    for line in request(port, "GET", "/metrics").body.decode().splitlines():
        if line.startswith(line_start):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_a_broken_policy_stops_serve_with_file_and_line(tmp_path: Path) -> None:
    policy = write_policy(tmp_path / "p", POLICY.replace("allow role user", "allow role usr", 1))
    run = subprocess.run(
        [sys.executable, "-m", "policyengine", "serve", str(policy), "--port", str(free_port())],
        capture_output=True,
        timeout=30,
    )
    assert run.returncode == 2
    assert b"gateway.policy:" in run.stderr and b"usr" in run.stderr


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--trusted-proxy", "10.0.0.1/8"], "is not a CIDR range"),
        (["--redis", "http://x"], "redis://"),
        (["--subject-header", "X Bad"], "not a valid header name"),
        (["--workers", "0"], "--workers"),
    ],
)
def test_bad_options_are_usage_errors(tmp_path: Path, option: list[str], message: str) -> None:
    policy = write_policy(tmp_path / "p")
    result = CliRunner().invoke(main, ["serve", str(policy), *option])
    assert result.exit_code == 2
    assert message in result.output


def test_sighup_reloads_the_policy(tmp_path: Path) -> None:
    policy = write_policy(tmp_path / "p")
    with serve_process(policy, "--reload-interval", "0") as (process, port):
        assert status_of(port, PUBLIC) == 200
        (policy / "gateway.policy").write_text(CLOSED_PUBLIC)
        time.sleep(0.3)
        assert status_of(port, PUBLIC) == 200  # no polling: nothing changes by itself
        process.send_signal(signal.SIGHUP)
        assert wait_until(lambda: status_of(port, PUBLIC) == 401)
        assert metric(port, 'policyengine_reloads_total{result="ok"}') == 1


def test_a_file_change_reloads_and_no_request_fails_meanwhile(tmp_path: Path) -> None:
    policy = write_policy(tmp_path / "p")
    failures: list[str] = []
    seen: set[int] = set()
    stop = threading.Event()

    def hammer(port: int) -> None:
        while not stop.is_set():
            try:
                status = status_of(port, PUBLIC)
            except OSError as err:
                failures.append(repr(err))
                continue
            seen.add(status)
            if status not in (200, 401):
                failures.append(f"status {status}")

    with serve_process(policy, "--reload-interval", "0.2") as (_, port):
        workers = [threading.Thread(target=hammer, args=(port,)) for _ in range(4)]
        for worker in workers:
            worker.start()
        try:
            for text in (CLOSED_PUBLIC, POLICY, CLOSED_PUBLIC, POLICY, CLOSED_PUBLIC):
                (policy / "gateway.policy").write_text(text)
                time.sleep(0.8)
        finally:
            stop.set()
            for worker in workers:
                worker.join()
        assert metric(port, 'policyengine_reloads_total{result="ok"}') >= 5
        assert status_of(port, PUBLIC) == 401
    assert failures == []
    assert seen == {200, 401}


def test_a_broken_policy_keeps_the_old_one_serving(tmp_path: Path) -> None:
    policy = write_policy(tmp_path / "p")
    log = tmp_path / "serve.log"
    with serve_process(policy, "--reload-interval", "0.2", stderr_path=log) as (_, port):
        (policy / "gateway.policy").write_text(
            POLICY + "\nroute GET /x {\n    allow role nobody\n}\n"
        )
        assert wait_until(lambda: metric(port, 'policyengine_reloads_total{result="error"}') == 1)
        assert status_of(port, PUBLIC) == 200
        assert (
            status_of(port, forward_auth("GET", "/api/orders/7", **{"X-API-Key": "key-alice"}))
            == 200
        )
    text = log.read_text()
    assert "reload failed, still serving the previous policy" in text
    assert "gateway.policy:" in text and "nobody" in text


def test_sigterm_lets_a_request_in_flight_finish(tmp_path: Path) -> None:
    policy = write_policy(tmp_path / "p")
    body = json.dumps({"method": "GET", "path": "/api/public"}).encode()
    head = b"POST /v1/decide HTTP/1.1\r\nHost: pe\r\nContent-Length: %d\r\n\r\n" % len(body)
    with serve_process(policy) as (process, port):
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(head + body[:10])
            time.sleep(0.2)
            process.send_signal(signal.SIGTERM)
            time.sleep(0.3)
            assert process.poll() is None  # still draining: a request is in flight
            sock.sendall(body[10:])
            answer = read_all(sock, 5.0)
        assert answer.startswith(b"HTTP/1.1 200 OK") and b"Connection: close" in answer
        assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["status"] == 200
        assert process.wait(10) == 0


def test_workers_share_the_port_and_their_metrics(tmp_path: Path) -> None:
    policy = write_policy(tmp_path / "p")
    log = tmp_path / "serve.log"
    with serve_process(policy, "--workers", "2", stderr_path=log) as (process, port):
        for _ in range(20):
            assert status_of(port, PUBLIC) == 200
        time.sleep(1.5)  # each worker publishes its counts once a second
        total = 'policyengine_decisions_total{endpoint="forward-auth",reason="allow"'
        assert metric(port, total) == 20
        pids = children(process.pid)
        assert len(pids) == 2
        os.kill(int(pids[0]), signal.SIGKILL)  # a worker dies: it is replaced
        assert wait_until(
            lambda: len(children(process.pid)) == 2 and pids[0] not in children(process.pid)
        )
        assert all(status_of(port, PUBLIC) == 200 for _ in range(10))
    assert "rate limits are counted per worker" in log.read_text()
    assert process.returncode == 0
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))  # the port is free again


def test_workers_with_redis_share_one_count(tmp_path: Path) -> None:
    policy = write_policy(tmp_path / "p")
    limited = forward_auth("GET", "/api/limited", **{"X-API-Key": "key-alice"})
    with (
        redis_server(tmp_path / "redis") as url,
        serve_process(policy, "--workers", "2", "--redis", url) as (_, port),
    ):
        statuses = [status_of(port, limited) for _ in range(6)]
    # a new connection each time: the kernel spreads them over both workers
    assert statuses == [200, 200, 429, 429, 429, 429]
