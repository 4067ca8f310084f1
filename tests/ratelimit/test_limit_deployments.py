"""The Redis deployments people run, each a real server started by conftest: a 3-node
Cluster, a primary behind a Sentinel, a TLS listener, a password and an ACL user.
Each counts exactly (sync and async), and no password shows in a log line or repr."""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from click.testing import CliRunner

from policyengine import Engine, Reason
from policyengine.cli import main
from policyengine.context import RequestContext
from policyengine.ratelimit import LimitOutcome, limiter_from_url
from policyengine.ratelimit.connect import CLUSTER_PREFIX, has_hash_tag, parse_store_url
from policyengine.ratelimit.plan import LimitSpec, plan_of
from policyengine.ratelimit.redis import RedisLimiter
from policyengine.request import Identity, Request

sys.path.insert(0, str(Path(__file__).parents[1] / "server"))  # the sidecar's test helpers
from server_support import forward_auth, request, serve_process

if TYPE_CHECKING:
    from conftest import Deployment, RedisServer

PASSWORD = "s3cret-Pw"  # conftest's
ACL_USER, ACL_PASSWORD = "limiter", "acl-s3cret-Pw"
BY_SUBJECT = (("subject", None),)
FIFTY = plan_of((LimitSpec("fifty", 50, 60.0, None, BY_SUBJECT, "t:50"),))


def ctx(subject: str) -> RequestContext:
    request = Request("GET", "/", identity=Identity(subject))
    context = RequestContext(request, (), "", 0.0)
    context.identity = request.identity
    return context


def sync_admitted(limiter: RedisLimiter, subject: str, n: int, threads: int = 6) -> int:
    """n checks on one key from several threads at once: how many were admitted."""
    admitted: list[bool] = []
    lock = threading.Lock()

    def run(count: int) -> None:
        for _ in range(count):
            outcome = limiter.check(FIFTY, ctx(subject))
            with lock:
                admitted.append(outcome.allowed and not outcome.unavailable)

    workers = [threading.Thread(target=run, args=(n // threads,)) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return sum(admitted)


def async_outcomes(limiter: RedisLimiter, subjects: list[str]) -> list[LimitOutcome]:
    async def at_once() -> list[LimitOutcome]:
        try:
            return list(
                await asyncio.gather(
                    *(limiter.take_async(FIFTY, FIFTY.derive(ctx(s)), 0) for s in subjects)
                )
            )
        finally:
            await limiter.aclose()

    return asyncio.run(at_once())


def assert_exact(limiter: RedisLimiter, key: str) -> None:
    """300 concurrent async checks on one key admit exactly 50; then threads get none,
    and a fresh key admits exactly 50 to threads."""
    outcomes = async_outcomes(limiter, [f"{key}-async"] * 300)
    assert sum(o.allowed for o in outcomes) == 50
    assert not any(o.unavailable for o in outcomes)
    assert sync_admitted(limiter, f"{key}-async", 12) == 0
    assert sync_admitted(limiter, f"{key}-sync", 120) == 50
    stats = limiter.stats()
    assert stats.store_errors == 0 and stats.checks == 300 + 12 + 120


# -- Redis Cluster ------------------------------------------------------------------------


def test_a_cluster_counts_exactly_in_one_slot(redis_cluster: Deployment) -> None:
    limiter = RedisLimiter(redis_cluster.url, timeout_ms=2000)
    assert_exact(limiter, "cluster")
    keys = [key for node in redis_cluster.servers for key in node.client().keys("*")]
    assert keys and all(key.startswith(CLUSTER_PREFIX.encode()) for key in keys)
    holders = [node for node in redis_cluster.servers if node.client().dbsize()]
    assert len(holders) == 1  # one hash tag: one slot, one node
    limiter.close()


def test_a_cluster_loads_the_script_again_after_a_flush(redis_cluster: Deployment) -> None:
    limiter = RedisLimiter(redis_cluster.url, timeout_ms=2000)
    assert sync_admitted(limiter, "flush", 6, threads=1) == 6
    for node in redis_cluster.servers:
        node.client().script_flush()
    assert sync_admitted(limiter, "flush", 6, threads=1) == 6  # NOSCRIPT, loaded, sent again
    for node in redis_cluster.servers:
        node.client().script_flush()
    outcomes = async_outcomes(limiter, ["flush"] * 200)  # the batcher's pipeline path
    assert sum(o.allowed for o in outcomes) == 50 - 12
    assert limiter.stats().store_errors == 0


def test_a_cluster_prefix_without_a_hash_tag_is_refused_at_start(
    redis_cluster: Deployment,
) -> None:
    with pytest.raises(ValueError, match="no hash tag: Redis Cluster needs one"):
        RedisLimiter(redis_cluster.url, prefix="policyengine:rl:")
    with pytest.raises(ValueError, match="no hash tag"):
        limiter_from_url(redis_cluster.url, prefix="{}:rl:")  # an empty tag is no tag
    assert RedisLimiter(redis_cluster.url, prefix="pe:{tenant-a}:rl:")  # a tag anywhere
    assert RedisLimiter("redis://127.0.0.1:1/0", prefix="plain:")  # one server needs none


@pytest.mark.parametrize(
    ("prefix", "tagged"),
    [("{pe}:", True), ("x{pe}y", True), ("{}:", False), ("}{:", False), ("{pe:", False),
     ("pe}:", False), ("{}{pe}", False), ("a{b}c{d}", True)],
)  # fmt: skip
def test_the_hash_tag_follows_redis_rule(prefix: str, tagged: bool) -> None:
    assert has_hash_tag(prefix) is tagged


# -- Sentinel -----------------------------------------------------------------------------


def test_a_sentinel_primary_counts_exactly(redis_sentinel: Deployment) -> None:
    limiter = RedisLimiter(redis_sentinel.url, timeout_ms=2000, pool_size=4)
    assert_exact(limiter, "sentinel")
    [primary] = redis_sentinel.servers
    assert primary.client().keys("policyengine:rl:*")  # counted on the primary named
    assert PASSWORD not in repr(limiter)
    limiter.close()


# -- TLS ----------------------------------------------------------------------------------


def test_tls_with_the_ca_counts_exactly(tls_redis: Deployment) -> None:
    limiter = RedisLimiter(tls_redis.url, timeout_ms=2000, ca_file=tls_redis.ca_file)
    assert_exact(limiter, "tls")
    limiter.close()


POLICY = """
policy "tls"
role user
limit few 5 per minute by subject
route GET /orders {
    allow role user
    limit few
}
"""


def test_tls_without_the_ca_fails_closed_and_logs_no_secret(
    tls_redis: Deployment, caplog: pytest.LogCaptureFixture
) -> None:
    limiter = limiter_from_url(tls_redis.url, timeout_ms=500, recovery_ms=0)
    assert isinstance(limiter, RedisLimiter)
    engine = Engine.from_text(POLICY, limiter=limiter)
    request = Request("GET", "/orders", identity=Identity("alice", frozenset({"user"})))
    with caplog.at_level(logging.WARNING, logger="policyengine.ratelimit"):
        decision = engine.decide(request)
        async_decision = asyncio.run(engine.decide_async(request))
    for refused in (decision, async_decision):  # on_store_error deny: a named 503
        assert (refused.status, refused.reason) == (503, Reason.RATE_LIMIT_UNAVAILABLE)
    assert limiter.stats().store_errors >= 1 and limiter.stats().checks == 0
    assert "certificate verify failed" in caplog.text
    assert PASSWORD not in caplog.text and PASSWORD not in repr(limiter)


def test_a_ca_file_is_only_for_tls() -> None:
    with pytest.raises(ValueError, match="a CA file is for TLS"):
        parse_store_url("redis://127.0.0.1:6379/0", ca_file="/etc/ssl/ca.pem")


# -- passwords --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "credentials", [f":{PASSWORD}", f"{ACL_USER}:{ACL_PASSWORD}"], ids=["requirepass", "acl"]
)
def test_a_password_in_the_url_is_used(auth_redis: RedisServer, credentials: str) -> None:
    limiter = RedisLimiter(f"redis://{credentials}@127.0.0.1:{auth_redis.port}/0")
    auth_redis.client().flushall()
    assert sync_admitted(limiter, "auth", 60, threads=3) == 50
    outcomes = async_outcomes(limiter, ["auth-async"] * 100)
    assert sum(o.allowed for o in outcomes) == 50
    assert limiter.stats().store_errors == 0
    limiter.close()


def test_a_wrong_password_fails_closed_without_showing_it(
    auth_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = "wrong-Pw-42"
    url = f"redis://{ACL_USER}:{wrong}@127.0.0.1:{auth_redis.port}/0"
    limiter = RedisLimiter(url, recovery_ms=0)
    with caplog.at_level(logging.WARNING, logger="policyengine.ratelimit"):
        outcome = limiter.check(FIFTY, ctx("wrong"))
        [async_outcome] = async_outcomes(limiter, ["wrong"])
    assert outcome.unavailable and async_outcome.unavailable
    assert "rate-limit store unreachable" in caplog.text
    for text in (caplog.text, repr(limiter), str(limiter.stats())):
        assert wrong not in text and ACL_PASSWORD not in text


@pytest.mark.parametrize(
    "url",
    [
        f"redis+sentinel://u:{PASSWORD}@127.0.0.1:26379",  # no service name
        f"redis+cluster://u:{PASSWORD}@127.0.0.1:notaport",
        f"redis+cluster://u:{PASSWORD}@127.0.0.1:7000/3",  # a cluster has db 0 only
        f"memcached://u:{PASSWORD}@127.0.0.1:11211",
    ],
)
def test_a_bad_store_url_is_a_usage_error_naming_no_secret(url: str, tmp_path: object) -> None:
    with pytest.raises(ValueError) as err:
        limiter_from_url(url)
    assert PASSWORD not in str(err.value)
    result = CliRunner().invoke(main, ["serve", str(tmp_path), "--redis", url])
    assert result.exit_code == 2 and "--redis:" in result.output
    assert PASSWORD not in result.output


def test_the_cli_checks_the_ca_file_against_the_url(tmp_path: object) -> None:
    result = CliRunner().invoke(
        main, ["serve", str(tmp_path), "--redis-ca-file", __file__]
    )  # no --redis at all
    assert result.exit_code == 2 and "--redis-ca-file needs a rediss://" in result.output


# -- failures: the same bounds and modes on every deployment ------------------------------


@pytest.mark.parametrize("mode", ["deny", "allow", "local"])
def test_a_cluster_down_at_start_follows_on_store_error(mode: str) -> None:
    limiter = RedisLimiter("redis+cluster://127.0.0.1:1", on_store_error=mode, recovery_ms=0)
    outcomes = [limiter.check(FIFTY, ctx("down")), *async_outcomes(limiter, ["down"])]
    if mode == "deny":
        assert all(o.unavailable and not o.allowed for o in outcomes)
    else:
        assert all(o.allowed and not o.unavailable for o in outcomes)
    assert limiter.stats().store_errors == 2 and limiter.stats().checks == 0


@pytest.mark.parametrize("name", ["redis_cluster", "redis_sentinel"])
def test_a_hung_store_is_bounded_by_the_timeout_and_recovers(
    name: str, request: pytest.FixtureRequest
) -> None:
    deployment: Deployment = request.getfixturevalue(name)
    limiter = RedisLimiter(deployment.url, timeout_ms=200, recovery_ms=0)
    assert limiter.check(FIFTY, ctx("hung")).allowed  # connected: slots known
    for node in deployment.servers:
        node.pause()
    try:
        started = time.monotonic()
        [async_outcome] = async_outcomes(limiter, ["hung"])
        async_took, started = time.monotonic() - started, time.monotonic()
        sync_outcome = limiter.check(FIFTY, ctx("hung"))
        sync_took = time.monotonic() - started
    finally:
        for node in deployment.servers:
            node.resume()
    assert async_outcome.unavailable and sync_outcome.unavailable
    assert async_took < 2.0 and sync_took < 2.0  # bounded by timeout_ms, not by Redis
    assert limiter.check(FIFTY, ctx("hung")).allowed  # the first answer ends the outage
    assert not limiter.stats().store_down


# -- the sidecar: serve --redis rediss://... --redis-ca-file ------------------------------

SIDECAR_POLICY = """
policy "sidecar"
limit three 3 per minute by client_ip
route GET /api/limited {
    allow anyone
    limit three
}
"""


def sidecar_statuses(workdir: Path, url: str, *options: str) -> tuple[list[int], str, str]:
    """Four requests through `policyengine serve`: their statuses, /metrics, stderr."""
    (workdir / "policy").mkdir(parents=True)
    (workdir / "policy" / "main.policy").write_text(SIDECAR_POLICY)
    stderr = workdir / "stderr"
    limited = forward_auth("GET", "/api/limited")
    with serve_process(workdir / "policy", "--redis", url, *options, stderr_path=stderr) as (
        _,
        port,
    ):
        statuses = [request(port, "GET", "/v1/forward-auth", limited).status for _ in range(4)]
        metrics = request(port, "GET", "/metrics").body.decode()
    return statuses, metrics, stderr.read_text()


def test_the_sidecar_counts_over_tls_and_fails_closed_without_the_ca(
    tls_redis: Deployment, tmp_path: Path
) -> None:
    assert tls_redis.ca_file is not None
    tls_redis.servers[0].client().flushall()
    statuses, metrics, log = sidecar_statuses(
        tmp_path / "ca", tls_redis.url, "--redis-ca-file", tls_redis.ca_file
    )
    assert statuses == [200, 200, 200, 429]
    assert PASSWORD not in metrics and PASSWORD not in log
    statuses, metrics, log = sidecar_statuses(tmp_path / "no-ca", tls_redis.url)
    assert statuses == [503] * 4  # ratelimit.unavailable: the certificate does not verify
    assert "certificate verify failed" in log and log.count("unreachable") == 1
    assert PASSWORD not in metrics and PASSWORD not in log
