"""Rate limits: what a check costs in each store, and what it adds to a decision.

Side by side in one run: the in-memory store and the Redis store (sync client, and the
asyncio client with concurrent callers), for a small quota (`5 per 10s` style, keys
cycling so most checks are admitted), a full `10000 per day` log (every check searches
it), and a burst limit. Then Engine.decide on one route with and without a limit, so
the added latency per decision shows directly. Medians over several rounds.

Redis runs on this machine (a fresh redis-server on a free port unless --redis URL is
given), so its numbers are a round trip over loopback: a floor for a networked Redis.

    .venv/bin/python bench/ratelimit.py [--rounds 7] [--ops 2000] [--redis redis://...]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import redis

from policyengine import Engine, Identity, Request
from policyengine.context import RequestContext
from policyengine.ratelimit import HeaderMode, Limiter, MemoryLimiter
from policyengine.ratelimit.algorithm import micros
from policyengine.ratelimit.plan import LimitSpec, plan_of
from policyengine.ratelimit.redis import RedisLimiter

SUBJECT = (("subject", None),)
LIMITS = {
    "5 per 10s, 1000 keys": (LimitSpec("small", 5, 10.0, None, SUBJECT, "bench:1"), 1000),
    "10000 per day, full log": (LimitSpec("daily", 10_000, 86_400.0, None, SUBJECT, "bench:2"), 1),
    "100 per min burst 20": (LimitSpec("rate", 100, 60.0, 20, SUBJECT, "bench:3"), 1000),
}  # fmt: skip
POLICY = """
role user
limit per_user 100 per 10s
route GET /plain { allow role user }
route GET /limited {
    allow role user
    limit per_user
}
"""
ASYNC_CONCURRENCY = 32


@dataclass(frozen=True, slots=True)
class Row:
    store: str
    what: str
    median_us: float  # per operation, as one caller sees it
    per_second: float


def median_rate(run: Callable[[int], None], ops: int, rounds: int) -> tuple[float, float]:
    """Median microseconds per op and ops per second over `rounds` timed rounds."""
    run(ops // 4)  # warm up: connections, script load, caches
    per_op = []
    for _ in range(rounds):
        started = time.perf_counter()
        run(ops)
        per_op.append((time.perf_counter() - started) / ops)
    middle = statistics.median(per_op)
    return middle * 1e6, 1 / middle


def contexts(keys: int) -> list[RequestContext]:
    return [
        RequestContext(Request("GET", "/", identity=Identity(f"user-{i}")), (), "", 0.0)
        for i in range(keys)
    ]


def sync_checks(limiter: Limiter, spec: LimitSpec, keys: int) -> Callable[[int], None]:
    pool, limits = contexts(keys), plan_of((spec,))

    def run(ops: int) -> None:
        for i in range(ops):
            ctx = pool[i % keys]
            ctx.now = time.time()
            limiter.check(limits, ctx)

    return run


def async_checks(limiter: Limiter, spec: LimitSpec, keys: int) -> Callable[[int], None]:
    """ASYNC_CONCURRENCY callers at once on one event loop, as in an asyncio server."""
    pool, limits = contexts(keys), plan_of((spec,))
    loop = asyncio.new_event_loop()

    async def caller(offset: int, ops: int) -> None:
        for i in range(offset, ops, ASYNC_CONCURRENCY):
            ctx = pool[i % keys]
            ctx.now = time.time()
            await limiter.take_async(limits, limits.derive(ctx), micros(ctx.now))

    async def callers(ops: int) -> None:
        await asyncio.gather(*(caller(k, ops) for k in range(ASYNC_CONCURRENCY)))

    def run(ops: int) -> None:
        loop.run_until_complete(callers(ops))

    return run


def fill(limiter: Limiter, spec: LimitSpec) -> None:
    """Admit a full log, so that every timed check searches 10000 entries and is refused."""
    [ctx] = contexts(1)
    ctx.now = time.time()
    while limiter.check(plan_of((spec,)), ctx).allowed:
        pass


def store_rows(name: str, limiter: Limiter, ops: int, rounds: int, asynchronous: bool
               ) -> Iterator[Row]:  # fmt: skip
    for what, (spec, keys) in LIMITS.items():
        if keys == 1:
            fill(limiter, spec)
        runner = async_checks if asynchronous else sync_checks
        median_us, per_second = median_rate(runner(limiter, spec, keys), ops, rounds)
        yield Row(name, f"check: {what}", median_us, per_second)


def decision_rows(name: str, limiter: Limiter | None, ops: int, rounds: int) -> Iterator[Row]:
    """One route without a limit (the baseline) or with one; 1000 callers in turn."""
    engine = Engine.from_text(POLICY, limiter=limiter)
    path = "/plain" if limiter is None else "/limited"
    requests = [
        Request("GET", path, identity=Identity(f"user-{i}", frozenset({"user"})))
        for i in range(1000)
    ]

    def run(count: int) -> None:
        for i in range(count):
            engine.decide(requests[i % 1000])

    median_us, per_second = median_rate(run, ops, rounds)
    yield Row(name, f"Engine.decide GET {path}", median_us, per_second)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def redis_server(url: str | None) -> Iterator[str]:
    if url is not None:
        yield url
        return
    binary = shutil.which("redis-server")
    if binary is None:
        sys.exit("redis-server is not installed (apt-get install redis-server), or pass --redis")
    port = free_port()
    with tempfile.TemporaryDirectory() as workdir:
        process = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", workdir],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            client = redis.Redis(port=port)
            for _ in range(500):
                try:
                    client.ping()
                    break
                except redis.ConnectionError:
                    time.sleep(0.01)
            client.close()
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            process.kill()
            process.wait()


def bytes_per_key(url: str) -> Iterator[tuple[str, int, int]]:
    """Each limit's state for one caller who used all of its quota: memory store, Redis."""
    client = redis.Redis.from_url(url)
    for what, (spec, _) in LIMITS.items():
        memory = MemoryLimiter()
        shared = RedisLimiter(url, prefix="bench:size:")
        fill(memory, spec)
        fill(shared, spec)
        [key] = client.keys(f"bench:size:{spec.name}:*")
        yield what, memory.stats().bytes, int(client.memory_usage(key) or 0)
        client.delete(key)
    client.close()


def print_table(rows: list[Row], baseline_us: float) -> None:
    print(f"{'store':<16} {'operation':<38} {'median us/op':>13} {'ops/s':>10} {'added':>9}")
    print("-" * 90)
    for row in rows:
        added = ""
        if row.what.startswith("Engine.decide") and "/limited" in row.what:
            added = f"+{row.median_us - baseline_us:.1f} us"
        print(f"{row.store:<16} {row.what:<38} {row.median_us:>13.1f} {row.per_second:>10,.0f} "
              f"{added:>9}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--ops", type=int, default=2000)
    parser.add_argument("--redis", help="use this Redis instead of starting one")
    args = parser.parse_args()
    headers = HeaderMode.IETF
    with redis_server(args.redis) as url:
        memory = MemoryLimiter(headers=headers)
        redis_sync = RedisLimiter(url, prefix="bench:sync:", headers=headers)
        redis_async = RedisLimiter(url, prefix="bench:async:", headers=headers)
        rows = [
            *store_rows("memory", memory, args.ops * 10, args.rounds, False),
            *store_rows("redis", redis_sync, args.ops, args.rounds, False),
            *store_rows(f"redis async x{ASYNC_CONCURRENCY}", redis_async, args.ops,
                        args.rounds, True),
            *decision_rows("none", None, args.ops * 10, args.rounds),
            *decision_rows("memory", MemoryLimiter(headers=headers), args.ops * 10, args.rounds),
            *decision_rows("redis", RedisLimiter(url, prefix="bench:engine:"), args.ops,
                           args.rounds),
        ]  # fmt: skip
        sizes = list(bytes_per_key(url))
    baseline = next(row.median_us for row in rows if row.store == "none")
    print(f"rate-limit checks and decisions; medians of {args.rounds} rounds; python "
          f"{sys.version.split()[0]}, redis-py {redis.__version__}")  # fmt: skip
    print_table(rows, baseline)
    print("(async: wall time / checks with 32 callers at once; added: over the route without)")
    print(f"\n{'bytes per key, quota used up':<40} {'memory store':>13} {'redis':>10}")
    for what, memory_bytes, redis_bytes in sizes:
        print(f"{what:<40} {memory_bytes:>13,} {redis_bytes:>10,}")


if __name__ == "__main__":
    main()
