"""Bans through the sidecar: one worker on its memory store, two sharing a real Redis."""

from __future__ import annotations

import time
from pathlib import Path

from server_support import (
    ServerThread,
    forward_auth,
    make_config,
    redis_server,
    request,
    serve_process,
    write_policy,
)

BANS = """\
policy "bans"

authn api_key {
    header "X-API-Key"
    keys file "keys.yaml"
}

role user
role admin

ban guessing after 3 failures per minute by client_ip for %s

route GET /api/orders/{id:int} {
    allow role user
    ban guessing
}
"""


def ask(port: int, key: str, source: str) -> tuple[int, str | None, str | None]:
    headers = forward_auth("GET", "/api/orders/7", **{"X-API-Key": key})
    reply = request(port, "GET", "/v1/forward-auth", headers, source=source)
    reason = reply.json()["reason"] if reply.body else None
    return reply.status, reason, reply.headers.get("Retry-After")


def test_the_sidecar_bans_an_address_then_lifts_the_ban(tmp_path: Path) -> None:
    write_policy(tmp_path / "p", BANS % "2s")
    with ServerThread(make_config(tmp_path / "p")) as server:
        for _ in range(2):
            assert ask(server.port, "guess", "127.0.0.5")[:2] == (401, "authn.invalid")
        assert ask(server.port, "key-alice", "127.0.0.5")[0] == 200  # N - 1: no ban
        # the same decision again, from the decision cache if it were cached
        assert ask(server.port, "key-alice", "127.0.0.5")[0] == 200
        assert ask(server.port, "guess", "127.0.0.5")[0] == 401
        assert ask(server.port, "key-alice", "127.0.0.5") == (403, "abuse.banned", "2")
        assert ask(server.port, "key-alice", "127.0.0.6")[0] == 200
        deadline = time.monotonic() + 5  # the sidecar runs on the real clock
        while ask(server.port, "key-alice", "127.0.0.5")[0] != 200:
            assert time.monotonic() < deadline, "the ban never lifted"
            time.sleep(0.2)
        metrics = request(server.port, "GET", "/metrics").body.decode()
        assert 'reason="abuse.banned"' in metrics


def test_two_sidecars_sharing_redis_ban_together(tmp_path: Path) -> None:
    directory = write_policy(tmp_path / "p", BANS % "10m")
    with (
        redis_server(tmp_path / "redis") as url,
        serve_process(directory, "--redis", url) as (_, first),
        serve_process(directory, "--redis", url) as (_, second),
    ):
        assert ask(first, "guess", "127.0.0.7")[0] == 401
        assert ask(second, "guess", "127.0.0.7")[0] == 401
        assert ask(first, "key-alice", "127.0.0.7")[0] == 200
        assert ask(second, "guess", "127.0.0.7")[0] == 401  # the third, on the second
        assert ask(first, "key-alice", "127.0.0.7") == (403, "abuse.banned", "600")
        assert ask(second, "key-alice", "127.0.0.7")[:2] == (403, "abuse.banned")
        assert ask(first, "key-alice", "127.0.0.8")[0] == 200
