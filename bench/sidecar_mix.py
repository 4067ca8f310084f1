"""bench/http.sh --uncached, --mix and --scaling: the sidecar where no cache helps.

- `--uncached`: nginx `return 200` beside forward-auth for GET /api/orders/<n> of
  policies/retail (role user), a new n in every request (a wrk Lua script), so no
  decision is ever reused: with an API key and with an RS256 JWT (verified once, then
  from the token cache). The same two with one fixed n (served by the decision cache)
  show the cached path beside them.
- `--mix`: traffic as an API sees it (policy written here): 200 callers, half with API
  keys and half with RS256 JWTs, a tenth of them admins; every request names another
  id; 60% GET /api/things/<n> (allowed), 15% GET /api/things/<n>/history (a limited
  route, 5 per second per caller: some 429s), 15% DELETE /api/things/<n> (admins only:
  403 for the others), 5% an unknown API key (401), 5% GET /api/public/<n> (anyone).
  Decision cache on, as served by default. wrk counts every status it gets.
- `--scaling`: one worker against `--workers 2` (forward-auth, a new id per request,
  API key), beside nginx with one and two worker processes, all with both cores and
  wrk (two threads) on them too: on a machine of two cores the second worker's gain
  is bounded by what wrk takes, so the requests per CPU-second say whether workers
  cost each other anything.

Every row is timed in each round, rounds alternate the rows, and the ratios are the
medians of each round's own ratio to nginx `return 200` of the same round. On a
machine shared with other work, a server's requests per second move with what else
runs on its core; so each row also counts the CPU time the server's processes spent
(user and system, from /proc) and reports requests per CPU-second: what one core
would serve were it the server's alone, and the ratio the issue's "per core" means.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import statistics
import subprocess
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

CALLERS = 200
ADMIN_EVERY = 10  # one caller in ten is an admin
MIX_POLICY = """policy "bench-mix"

authn api_key {
    header "X-API-Key"
    keys file "keys.yaml"
}

authn jwt {
    issuer     "https://idp.bench.test"
    audience   "bench-mix"
    algorithms RS256
    public_key file "jwt.pub.pem"
    roles      claim "roles"
}

role user
role admin inherits user

limit history_per_caller 5 per second by subject

route GET /api/public/{id:int} {
    allow anyone
}

route GET /api/things/{id:int} {
    allow role user
}

route GET /api/things/{id:int}/history {
    allow role user
    limit history_per_caller
}

route DELETE /api/things/{id:int} {
    allow role admin
}
"""
# per request: a caller, then what it asks (shares in percent, cumulative)
MIX_LUA = """
math.randomseed(os.time())
local callers = {%(callers)s}
c200, c401, c403, c429, other = 0, 0, 0, 0, 0
request = function()
  local id = math.random(1, 1000000000)
  local pick = math.random(1, 100)
  local headers = {["X-Original-Method"] = "GET"}
  local caller = callers[math.random(1, #callers)]
  headers[caller[1]] = caller[2]
  if pick <= 60 then
    headers["X-Original-URI"] = "/api/things/" .. id
  elseif pick <= 75 then
    headers["X-Original-URI"] = "/api/things/" .. id .. "/history"
  elseif pick <= 90 then
    headers["X-Original-Method"] = "DELETE"
    headers["X-Original-URI"] = "/api/things/" .. id
  elseif pick <= 95 then
    headers[caller[1]] = nil
    headers["X-API-Key"] = "no-such-key-" .. id
    headers["X-Original-URI"] = "/api/things/" .. id
  else
    headers["X-Original-URI"] = "/api/public/" .. id
  end
  return wrk.format("GET", "/v1/forward-auth", headers)
end
response = function(status, headers, body)
  -- in nginx mode a 429 travels as a 403 with X-Policy-Status: 429
  if status == 403 and headers["X-Policy-Status"] == "429" then status = 429 end
  if status == 200 then c200 = c200 + 1
  elseif status == 401 then c401 = c401 + 1
  elseif status == 403 then c403 = c403 + 1
  elseif status == 429 then c429 = c429 + 1
  else other = other + 1 end
end
"""
STATUSES = ("c200", "c401", "c403", "c429", "other")
NEW_ORDER_LUA = """
request = function()
  wrk.headers["X-Original-URI"] = "/api/orders/" .. math.random(1, 1000000000)
  return wrk.format()
end
"""
_UNITS = {"us": 1.0, "ms": 1000.0, "s": 1_000_000.0}


@dataclass
class Row:
    name: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    script: Path | None = None
    counting: bool = False  # the script counts statuses (the mix)
    rps: list[float] = field(default_factory=list)
    p50_us: list[float] = field(default_factory=list)
    p99_us: list[float] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)
    socket_errors: int = 0
    pid: int | None = None  # the server's, for its CPU time
    per_cpu_second: list[float] = field(default_factory=list)  # requests per CPU-second

    def clear(self) -> None:
        self.rps.clear(), self.p50_us.clear(), self.p99_us.clear()
        self.statuses.clear(), self.per_cpu_second.clear()
        self.socket_errors = 0


_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User and system time of a process and all its descendants (nginx's and the
    sidecar's workers), from /proc."""
    total, pending = 0.0, [pid]
    while pending:
        current = pending.pop()
        try:
            stat = Path(f"/proc/{current}/stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            total += (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime
            for task in Path(f"/proc/{current}/task").iterdir():
                pending += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, ValueError):
            continue  # a process that just ended
    return total


def run(row: Row, duration: float, connections: int, cores: str, threads: int = 1) -> None:
    command = ["taskset", "-c", cores, "wrk", f"-t{threads}", f"-c{connections}"]
    command += [f"-d{duration:g}s"]
    command += ["--latency", "--timeout", "2s"]
    for name, value in row.headers.items():
        command += ["-H", f"{name}: {value}"]
    script = row.script
    if row.counting and script is not None:
        done = script.with_suffix(".done.lua")
        if not done.exists():
            done.write_text(
                script.read_text()
                + "threads = {}\nsetup = function(t) table.insert(threads, t) end\n"
                + "done = function(summary, latency, requests)\n"
                + "  for _, t in ipairs(threads) do\n"
                + "".join(f'    io.write("{s} ", t:get("{s}"), "\\n")\n' for s in STATUSES)
                + "  end\nend\n"
            )
        script = done
    if script is not None:
        command += ["-s", str(script)]
    before = cpu_seconds(row.pid) if row.pid is not None else 0.0
    output = subprocess.run([*command, row.url], capture_output=True, text=True, check=True).stdout
    if row.pid is not None:
        spent = cpu_seconds(row.pid) - before
        requests = int(_find(r"(\d+) requests in", output))
        row.per_cpu_second.append(requests / spent if spent > 0 else float("nan"))
    row.rps.append(float(_find(r"Requests/sec:\s+([\d.]+)", output)))
    for percent, values in (("50", row.p50_us), ("99", row.p99_us)):
        match = re.search(rf"^\s+{percent}%\s+([\d.]+)(us|ms|s)\s*$", output, re.MULTILINE)
        if match is None:
            raise SystemExit(f"unexpected wrk output:\n{output}")
        values.append(float(match[1]) * _UNITS[match[2]])
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                       output)  # fmt: skip
    row.socket_errors += sum(int(n) for n in errors.groups()) if errors else 0
    if row.counting:
        for name, count in re.findall(r"^(c\d+|other) (\d+)$", output, re.MULTILINE):
            row.statuses[name] = row.statuses.get(name, 0) + int(count)
    elif "Non-2xx" in output:
        raise SystemExit(f"{row.name}: wrk saw non-2xx answers:\n{output}")


def _find(pattern: str, text: str) -> str:
    match = re.search(pattern, text)
    if match is None:
        raise SystemExit(f"unexpected wrk output:\n{text}")
    return match[1]


def measure(rows: list[Row], args: argparse.Namespace, cores: str, threads: int = 1) -> None:
    for row in rows:  # warm up: caches, connections, CPU frequency
        run(row, 1, args.connections, cores, threads)
        row.clear()
    for _ in range(args.rounds):
        for row in rows:
            run(row, args.duration, args.connections, cores, threads)


def report(rows: list[Row], ceiling: Row, title: str) -> None:
    print(f"\n{title}\n")
    print(
        f"{'':<52}{'req/s':>8}{'p50':>8}{'p99':>9}{'vs nginx':>9}{'rounds':>11}"
        f"{'req/CPU-s':>11}{'vs nginx':>9}"
    )
    for row in [ceiling, *rows]:
        ratios = [rps / top for rps, top in zip(row.rps, ceiling.rps, strict=True)]
        per_cpu = [a / b for a, b in zip(row.per_cpu_second, ceiling.per_cpu_second, strict=True)]
        cpu = (
            f"{statistics.median(row.per_cpu_second):>11.0f}{statistics.median(per_cpu):>9.2f}"
            if per_cpu
            else ""
        )
        print(
            f"{row.name:<52}{statistics.median(row.rps):>8.0f}"
            f"{statistics.median(row.p50_us):>6.0f}µs{statistics.median(row.p99_us):>7.0f}µs"
            f"{statistics.median(ratios):>9.2f}{min(ratios):>6.2f}-{max(ratios):.2f}{cpu}"
        )
        if row.counting:
            total = sum(row.statuses.values()) or 1
            shares = ", ".join(
                f"{name.lstrip('c')} {count / total:.1%}" for name, count in row.statuses.items()
            )
            print(f"{'':<4}answers: {shares}; socket errors {row.socket_errors}")
        elif row.socket_errors:
            print(f"{'':<4}socket errors {row.socket_errors}")


# -- the mix policy and its callers ----------------------------------------------------
def write_mix_policy(directory: Path) -> list[tuple[str, str]]:
    """The policy, its keys and key; returns each caller's credential header."""
    directory.mkdir()
    (directory / "mix.policy").write_text(MIX_POLICY)
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    (directory / "jwt.pub.pem").write_bytes(public)
    callers, entries = [], ["keys:"]
    now = int(time.time())
    for n in range(CALLERS):
        role = "admin" if n % ADMIN_EVERY == 0 else "user"
        if n % 2 == 0:
            key = f"bench-mix-key-{n}"
            digest = hashlib.sha256(key.encode()).hexdigest()
            entries.append(f'  - sha256: "{digest}"\n    subject: key-{n}\n    roles: [{role}]')
            callers.append(("X-API-Key", key))
        else:
            claims = {"iss": "https://idp.bench.test", "aud": "bench-mix", "sub": f"jwt-{n}",
                      "roles": [role], "iat": now - 60, "exp": now + 3600}  # fmt: skip
            token = jwt.encode(claims, private, algorithm="RS256")
            callers.append(("Authorization", f"Bearer {token}"))
    (directory / "keys.yaml").write_text("\n".join(entries) + "\n")
    return callers


def mix_script(work: Path, callers: list[tuple[str, str]]) -> Path:
    script = work / "mix.lua"
    listed = ", ".join(f'{{"{name}", "{value}"}}' for name, value in callers)
    script.write_text(MIX_LUA % {"callers": listed})
    return script


# -- the modes ---------------------------------------------------------------------------
def uncached_rows(work: Path, sidecar: int, pid: int, token: str) -> list[Row]:
    script = work / "new-order.lua"
    script.write_text(NEW_ORDER_LUA)
    fa = f"http://127.0.0.1:{sidecar}/v1/forward-auth"
    original = {"X-Original-Method": "GET", "X-Original-URI": "/api/orders/7"}
    key = original | {"X-API-Key": "test-key-alice"}
    bearer = original | {"Authorization": f"Bearer {token}"}
    rows = [
        Row("forward-auth, a new id per request: API key", fa, key, script),
        Row("forward-auth, a new id per request: JWT (RS256)", fa, bearer, script),
        Row("forward-auth, one id (decision cache): API key", fa, key),
        Row("forward-auth, one id (decision cache): JWT (RS256)", fa, bearer),
    ]
    for row in rows:
        row.pid = pid
    return rows


def main(argv: list[str]) -> None:
    import tempfile

    from sidecar_http import free_port, nginx, retail_with_fresh_key, return_200, serve_command
    from sidecar_http import started as started_process

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--uncached", action="store_true")
    parser.add_argument("--mix", action="store_true")
    parser.add_argument("--scaling", action="store_true")
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--server-core", type=int, default=0)
    parser.add_argument("--client-core", type=int, default=1)
    args = parser.parse_args(argv)
    core, client = args.server_core, str(args.client_core)
    header = (
        f"wrk -t1 -c{args.connections} -d{args.duration:g}s, medians of {args.rounds} rounds; "
        f"Python {sys.version.split()[0]}, {os.cpu_count()} cores"
    )
    with tempfile.TemporaryDirectory(prefix="pe-bench-mix-") as tmp, ExitStack() as stack:
        work = Path(tmp)
        token = retail_with_fresh_key(work / "retail")
        app = free_port()
        ceiling = Row("nginx return 200", f"http://127.0.0.1:{app}/")
        ceiling.pid = stack.enter_context(nginx(return_200(work / "app", app), app, core)).pid
        rows: list[Row] = []
        if args.uncached:
            sidecar = free_port()
            command = serve_command(work / "retail", sidecar, [])
            pid = stack.enter_context(started_process(command, sidecar, core)).pid
            rows += uncached_rows(work, sidecar, pid, token)
        if args.mix:
            callers = write_mix_policy(work / "mix")
            mixed = free_port()
            command = serve_command(work / "mix", mixed, [])
            pid = stack.enter_context(started_process(command, mixed, core)).pid
            fa = f"http://127.0.0.1:{mixed}/v1/forward-auth"
            script = mix_script(work, callers)
            rows.append(Row("the mix (200 callers, keys and JWTs, new ids)", fa, {}, script, True))
            rows[-1].pid = pid
        if rows:
            measure([ceiling, *rows], args, client)
            report(rows, ceiling, f"{header}; servers on core {core}, wrk on core {client}")
        if args.scaling:
            scaling(stack, work, args, header)


def scaling(stack: ExitStack, work: Path, args: argparse.Namespace, header: str) -> None:
    """One worker against two, and nginx likewise, every process free to use both cores."""
    from sidecar_http import free_port, nginx, nginx_conf, serve_command
    from sidecar_http import started as started_process

    both = "0,1"
    script = work / "new-order.lua"
    script.write_text(NEW_ORDER_LUA)
    headers = {"X-Original-Method": "GET", "X-Original-URI": "/api/orders/7",
               "X-API-Key": "test-key-alice"}  # fmt: skip
    rows = []
    for workers in (1, 2):
        port = free_port()
        conf = nginx_conf(
            work / f"nginx-{workers}",
            f"server {{ listen 127.0.0.1:{port} reuseport; location / {{ return 200; }} }}",
        )
        text = conf.read_text().replace("worker_processes 1;", f"worker_processes {workers};")
        conf.write_text(text)
        row = Row(f"nginx return 200, {workers} worker(s)", f"http://127.0.0.1:{port}/")
        row.pid = stack.enter_context(nginx(conf, port, both)).pid  # type: ignore[arg-type]
        rows.append(row)
    for workers in (1, 2):
        port = free_port()
        command = serve_command(work / "retail", port, ["--workers", str(workers)])
        url = f"http://127.0.0.1:{port}/v1/forward-auth"
        row = Row(f"forward-auth, new id, API key, --workers {workers}", url, headers, script)
        row.pid = stack.enter_context(started_process(command, port, both)).pid  # type: ignore[arg-type]
        rows.append(row)
    measure(rows, args, both, threads=2)  # one wrk thread alone would limit nginx
    n1, n2, s1, s2 = rows
    title = header.replace("wrk -t1", "wrk -t2")
    report([n2, s1, s2], n1, f"{title}; every process on cores 0-1 (wrk too)")
    for two, one in ((n2, n1), (s2, s1)):
        ratios = [b / a for a, b in zip(one.rps, two.rps, strict=True)]
        print(f"  {two.name}: {statistics.median(ratios):.2f}x {one.name} (req/s)")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main(sys.argv[1:])
