"""bench/http.sh's rate-limit rows: an open route against a limited one, memory and Redis.

One policy (written here) with two API-key routes for role user: GET /open, and
GET /limited naming `limit roomy` (a million per second per subject: it never refuses,
so every answer should be a 200 and the rows time the limit's cost, not refusals).
Three sidecars of one worker each, on the server core: the memory store, the Redis
store (a redis-server of its own, also on the server core) and, for the open route,
the memory one again. Each row runs at every connection count asked for; wrk's
non-2xx answers and socket errors are counted beside the throughput (a refused or
failed check is a non-2xx).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from statistics import median

KEY = "bench-limits-key"
POLICY = """policy "bench-limits"

authn api_key {
    header "X-API-Key"
    keys file "keys.yaml"
}

role user
limit roomy 1000000 per second by subject burst 1000000

route GET /open {
    allow role user
}

route GET /limited {
    allow role user
    limit roomy
}
"""


@dataclass
class LimitRow:
    name: str
    url: str
    connections: int
    rps: list[float] = field(default_factory=list)
    p99_us: list[float] = field(default_factory=list)
    non_2xx: list[int] = field(default_factory=list)
    socket_errors: list[int] = field(default_factory=list)
    pids: tuple[int, ...] = ()  # the processes on the server core: the sidecar (and Redis)
    cpu_us: list[float] = field(default_factory=list)  # their CPU time per request


def write_policy(directory: Path) -> None:
    directory.mkdir()
    (directory / "limits.policy").write_text(POLICY)
    digest = hashlib.sha256(KEY.encode()).hexdigest()
    (directory / "keys.yaml").write_text(
        f'keys:\n  - sha256: "{digest}"\n    subject: bench\n    roles: [user]\n'
    )


def redis_command(port: int, workdir: Path) -> list[str]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is needed (Debian: apt-get install redis-server)")
    return [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
            "no", "--dir", str(workdir)]  # fmt: skip


def rows(
    memory: tuple[int, tuple[int, ...]], redis: tuple[int, tuple[int, ...]], connections: list[int]
) -> list[LimitRow]:
    """The rows at each connection count; each sidecar given as (port, its pids)."""
    (memory_port, memory_pids), (redis_port, redis_pids) = memory, redis
    memory_url = f"http://127.0.0.1:{memory_port}/v1/forward-auth"
    redis_url = f"http://127.0.0.1:{redis_port}/v1/forward-auth"
    out = []
    for count in connections:
        out += [
            LimitRow(f"open route, -c{count}", memory_url, count, pids=memory_pids),
            LimitRow(f"limited route, memory, -c{count}", memory_url, count, pids=memory_pids),
            LimitRow(f"limited route, Redis, -c{count}", redis_url, count, pids=redis_pids),
        ]
    return out


def cpu_seconds(pids: tuple[int, ...]) -> float:
    """User and system CPU time of these processes so far (Linux /proc)."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime: fields 14 and 15
    return total / os.sysconf("SC_CLK_TCK")


def run_wrk(row: LimitRow, duration: float, core: int) -> None:
    path = "/open" if row.name.startswith("open") else "/limited"
    command = [
        *("taskset", "-c", str(core), "wrk", "-t1", f"-c{row.connections}"),
        *(f"-d{duration:g}s", "--latency", "--timeout", "2s"),
        *("-H", "X-Original-Method: GET", "-H", f"X-Original-URI: {path}"),
        *("-H", f"X-API-Key: {KEY}", row.url),
    ]
    cpu_before = cpu_seconds(row.pids)
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    requests = int(_find(r"(\d+) requests in", output))
    row.cpu_us.append((cpu_seconds(row.pids) - cpu_before) / max(requests, 1) * 1e6)
    row.rps.append(float(_find(r"Requests/sec:\s+([\d.]+)", output)))
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    row.non_2xx.append(int(non_2xx[1]) if non_2xx else 0)
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    row.socket_errors.append(sum(int(n) for n in errors.groups()) if errors else 0)
    p99 = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s)\s*$", output, re.MULTILINE)
    assert p99, output
    row.p99_us.append(float(p99[1]) * {"us": 1.0, "ms": 1000.0, "s": 1e6}[p99[2]])


def _find(pattern: str, text: str) -> str:
    match = re.search(pattern, text)
    if match is None:
        raise SystemExit(f"unexpected wrk output:\n{text}")
    return match[1]


def report(limit_rows: list[LimitRow], duration: float, rounds: int) -> None:
    print(
        f"\nrate limits: wrk -t1 -d{duration:g}s, medians of {rounds} rounds; one worker "
        "per sidecar, Redis on the server core;\n  non-2xx and socket errors summed over "
        "the rounds (targets: limited >= 0.5 of open, Redis >= 0.5 of memory, no errors)\n"
    )
    print(
        f"{'':<36}{'req/s':>10}{'p99':>10}{'non-2xx':>10}{'sock err':>10}{'ratio':>18}"
        f"{'CPU/req':>10}"
    )
    by_name = {row.name: row for row in limit_rows}
    for row in limit_rows:
        count = row.connections
        if row.name.startswith("limited route, memory"):
            base, label = by_name[f"open route, -c{count}"], "of open"
        elif row.name.startswith("limited route, Redis"):
            base, label = by_name[f"limited route, memory, -c{count}"], "of memory"
        else:
            base, label = None, ""
        ratio = ""
        if base is not None:
            ratios = [a / b for a, b in zip(row.rps, base.rps, strict=True)]
            ratio = f"{median(ratios):.2f} {label}"
        print(
            f"{row.name:<36}{median(row.rps):>10.0f}{median(row.p99_us) / 1000:>8.1f}ms"
            f"{sum(row.non_2xx):>10}{sum(row.socket_errors):>10}{ratio:>18}"
            f"{median(row.cpu_us):>8.1f}us"
        )
    print(
        "\n  CPU/req: the server core's CPU time per answer (the sidecar, and Redis in its "
        "rows),\n  from /proc: on a shared machine it moves less than req/s does."
    )
