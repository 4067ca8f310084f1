"""Redis killed under load and started again: the sidecar answers every request as
`--redis-on-error` says, none waits past the bound, it recovers by itself, and the
outage is logged once, not once per request.

Load: 40 keep-alive connections asking forward-auth about a limited route as fast as
they can (the decision cache reuses the decision and takes from the limit again on
every request, so every answer asks Redis); Redis is SIGKILLed a second in and
started again on the same port a second later.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from server_support import free_port, require_binary, serve_process, wait_for_port, write_policy

ROOMY_POLICY = """\
policy "outage-test"

authn api_key {
    header "X-API-Key"
    keys file "keys.yaml"
}

role user
role admin  # keys.yaml (server_support) names it
limit roomy 1000000 per second by subject burst 1000000

route GET /api/limited {
    allow role user
    limit roomy
}
"""
CONNECTIONS = 40
REQUEST = (
    b"GET /v1/forward-auth HTTP/1.1\r\nHost: sidecar\r\nX-Original-Method: GET\r\n"
    b"X-Original-URI: /api/limited\r\nX-API-Key: key-alice\r\n\r\n"
)


class Redis:
    """A redis-server that can be killed and started again on its port."""

    def __init__(self, workdir: Path) -> None:
        self.binary = require_binary("/usr/bin/redis-server")
        self.port = free_port()
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_for_port(self.port, process=self.process)

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(10)


@dataclass
class Answers:
    """(seconds since the load began, status, reason, seconds the answer took)."""

    rows: list[tuple[float, int, str, float]] = field(default_factory=list)

    def between(self, start: float, end: float) -> list[tuple[float, int, str, float]]:
        return [row for row in self.rows if start <= row[0] < end]


async def one_connection(port: int, until: float, began: float, answers: Answers) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.monotonic() < until:
            sent = time.monotonic()
            writer.write(REQUEST)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
            body = await reader.readexactly(length) if length else b""
            reason = json.loads(body)["reason"] if body else "allow"
            now = time.monotonic()
            answers.rows.append((sent - began, status, reason, now - sent))
    finally:
        writer.close()


async def load(port: int, seconds: float, redis: Redis, answers: Answers) -> None:
    began = time.monotonic()
    until = began + seconds
    clients = [one_connection(port, until, began, answers) for _ in range(CONNECTIONS)]

    async def outage() -> None:
        await asyncio.sleep(1.0)
        redis.kill()
        await asyncio.sleep(1.0)
        await asyncio.to_thread(redis.start)

    await asyncio.gather(*clients, outage())


@pytest.mark.parametrize(("mode", "during"), [("deny", 503), ("allow", 200), ("local", 200)])
def test_redis_killed_under_load_and_started_again(tmp_path: Path, mode: str, during: int
                                                    ) -> None:  # fmt: skip
    policy = write_policy(tmp_path / "p", ROOMY_POLICY)
    redis = Redis(tmp_path)
    redis.start()
    log = tmp_path / "stderr.log"
    args = ("--redis", f"redis://127.0.0.1:{redis.port}/0", "--redis-on-error", mode,
            "--redis-timeout-ms", "100", "--redis-recovery-ms", "300")  # fmt: skip
    answers = Answers()
    try:
        with serve_process(policy, *args, stderr_path=log) as (_, port):
            asyncio.run(load(port, 4.0, redis, answers))
    finally:
        redis.kill()
    statuses = {status for _, status, _, _ in answers.rows}
    assert statuses <= {200, during}, statuses
    assert all(took < 1.0 for *_, took in answers.rows)  # bounded by timeout_ms, not Redis
    if during != 200:
        refused = [row for row in answers.rows if row[1] == during]
        assert refused and all(reason == "ratelimit.unavailable" for _, _, reason, _ in refused)
    # before the kill everything was fine; 0.5 s after the restart (recovery 300 ms) again
    assert {row[1] for row in answers.between(0.0, 0.9)} == {200}
    assert {row[1] for row in answers.between(2.6, 4.0)} == {200}
    assert len(answers.between(2.6, 4.0)) > 100
    text = log.read_text()
    assert text.count("rate-limit store unreachable") == 1, text
    assert text.count("rate-limit store reachable again") == 1, text
    assert "key-alice" not in text
