"""Engine.decide against its peers on one synthetic RBAC workload, side by side.

For each policy size (routes) it builds the workload (bench/workload.py), compiles
it with policyengine and each peer (bench/peers.py), checks that every contender
gives the same answer as policyengine on every call it is timed on (and that
policyengine gives the workload's expected answer on every call), then times them:
latency per call with perf_counter_ns (p50, p99) and, in a separate loop,
decisions per second; medians over several repetitions. Peers are timed on a
prefix of the same calls, sized to a time budget; a peer that would take over a
minute for even the fewest calls is skipped with its estimated time.

    .venv/bin/python bench/decide.py [--sizes 10,100,1000,10000] [--calls 20000]
"""

from __future__ import annotations

import argparse
import gc
import math
import platform
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from peers import BUILD_REPS, PEER_BUILDERS, Contender, build_trie, build_trie_same_request
from workload import Call, Workload, make_workload, write_policy_dir

from policyengine import Decision, Engine, Identity, Request

TARGET_P50_US = 5.0
TARGET_FLATNESS = 1.5  # p50 at the largest size over p50 at 100 routes
TARGET_TRIE_RATIO = 2.0  # policyengine's p50 over a bare trie's, at every size (issue 18)
TRIES = ("bare segment trie", "bare trie, same request")
PEER_MIN_CALLS = 200
PEER_MAX_CALLS = 5000
PROBE_CALLS = 10
PE = "policyengine"
PE_ROW = f"{PE} (API key per call)"
LIMITED_ROW = f"{PE} (API key, limited)"  # every route: `limit roomy`, memory store


@dataclass(frozen=True, slots=True)
class Timing:
    calls: int
    p50_ns: float
    p99_ns: float
    per_second: float


@dataclass(frozen=True, slots=True)
class Row:
    size: int
    name: str
    timing: Timing | None
    note: str = ""  # why there is no timing


@dataclass(frozen=True, slots=True)
class Compiled:
    size: int
    load_seconds: float  # Engine.load, median
    pass_seconds: dict[str, float]  # CompiledPolicy.pass_times, median per pass
    peer_seconds: dict[str, float]  # each peer's build, median
    peer_steps: dict[str, str]  # what each peer's build does


class Disagreement(SystemExit):
    pass


# -- timing ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Entry:
    """A contender ready to time: its call, its inputs and how many repetitions."""

    name: str
    call: Callable[[Any], Any]
    inputs: Sequence[Any]
    reps: int


def measure_side_by_side(entries: Sequence[Entry]) -> dict[str, Timing]:
    """Round-robin repetitions, so that load from elsewhere falls on every contender alike."""
    samples: dict[str, tuple[list[int], list[int], list[float]]] = {
        e.name: ([], [], []) for e in entries
    }
    for round_ in range(max(e.reps for e in entries)):
        for e in entries:
            if round_ >= e.reps:
                continue
            p50s, p99s, rates = samples[e.name]
            latencies = _latencies(e.call, e.inputs)
            p50s.append(_percentile(latencies, 0.50))
            p99s.append(_percentile(latencies, 0.99))
            rates.append(_throughput(e.call, e.inputs))
    return {
        e.name: Timing(len(e.inputs), *(statistics.median(s) for s in samples[e.name]))
        for e in entries
    }


def _latencies(call: Callable[[Any], Any], inputs: Sequence[Any]) -> list[int]:
    gc.collect()
    clock = time.perf_counter_ns
    latencies: list[int] = []
    append = latencies.append
    for item in inputs:
        started = clock()
        call(item)
        append(clock() - started)
    latencies.sort()
    return latencies


def _throughput(call: Callable[[Any], Any], inputs: Sequence[Any]) -> float:
    gc.collect()
    started = time.perf_counter_ns()
    for item in inputs:
        call(item)
    return len(inputs) / ((time.perf_counter_ns() - started) / 1e9)


def _percentile(ordered: list[int], q: float) -> int:
    """Nearest rank: the smallest value with at least q of the samples at or below it."""
    return ordered[max(0, math.ceil(round(q * len(ordered), 9)) - 1)]


def clock_overhead_ns() -> int:
    clock = time.perf_counter_ns
    samples = []
    for _ in range(10000):
        started = clock()
        samples.append(clock() - started)
    samples.sort()
    return samples[len(samples) // 2]


# -- agreement -------------------------------------------------------------------------


def check_reference(decisions: Sequence[Decision], calls: Sequence[Call], size: int) -> None:
    """policyengine must give the answer the workload was built to have."""
    wrong = [(c, d) for c, d in zip(calls, decisions, strict=True) if d.allow != c.expected_allow]
    if wrong:
        lines = [
            f"  {c.kind.value}: {c.method} {c.path} as {c.subject}: expected "
            f"allow={c.expected_allow}, got {d.reason} ({d.message})"
            for c, d in wrong[:5]
        ]
        raise Disagreement(
            f"policyengine is wrong on {len(wrong)} of {len(calls)} calls "
            f"at {size} routes:\n" + "\n".join(lines)
        )


def check_same_answers(
    limited: Engine, requests: Sequence[Request], reference: Sequence[Decision], size: int
) -> None:
    """The limit never refuses, so the limited policy must answer every call the same."""
    answers = [limited.decide(r) for r in requests]
    wrong = sum(
        a.allow != d.allow or a.status != d.status for a, d in zip(answers, reference, strict=True)
    )
    if wrong or not any(a.response_headers for a in answers):
        raise Disagreement(f"the limited policy answers {wrong} calls differently at {size}")


def check_agreement(
    contender: Contender,
    inputs: Sequence[Any],
    reference: Sequence[Decision],
    calls: Sequence[Call],
    size: int,
    indices: range,
) -> None:
    """The contender's verdict on each input at `indices` must be policyengine's."""
    wrong = [
        i for i in indices if contender.allowed(contender.call(inputs[i])) != reference[i].allow
    ]
    if wrong:
        lines = [
            f"  {calls[i].kind.value}: {calls[i].method} {calls[i].path} as "
            f"{calls[i].subject}: policyengine says {reference[i].reason}, "
            f"{contender.name} says allow={not reference[i].allow}"
            for i in wrong[:5]
        ]
        raise Disagreement(
            f"{contender.name} disagrees with policyengine on {len(wrong)} of "
            f"{len(indices)} calls at {size} routes:\n" + "\n".join(lines)
        )


# -- one size ----------------------------------------------------------------------------


# What a gateway forwards with every request besides the credential (and an X-Request-Id).
FORWARDED_HEADERS = {
    "Host": "api.example.test",
    "User-Agent": "bench-client/1.0",
    "Accept": "application/json",
    "Accept-Encoding": "gzip, br",
    "X-Forwarded-For": "203.0.113.7",
}


def _headers(index: int, key: str | None) -> dict[str, str]:
    headers = {**FORWARDED_HEADERS, "X-Request-Id": f"req-{index:08d}"}
    if key is not None:
        headers["X-API-Key"] = key
    return headers


def pe_requests(calls: Sequence[Call]) -> list[Request]:
    return [Request(c.method, c.path, _headers(i, c.key)) for i, c in enumerate(calls)]


def pe_requests_with_identity(w: Workload) -> list[Request]:
    identities = {u.subject: Identity(u.subject, frozenset({u.role})) for u in w.users}
    return [
        Request(c.method, c.path, _headers(i, None), identity=identities.get(c.subject))
        for i, c in enumerate(w.calls)
    ]


def compile_pe(directory: Path, reps: int) -> tuple[Engine, float, dict[str, float]]:
    loads: list[float] = []
    passes: dict[str, list[float]] = {}
    engine = None
    for _ in range(reps):
        gc.collect()
        started = time.perf_counter()
        engine = Engine.load(directory)
        loads.append(time.perf_counter() - started)
        for name, seconds in engine.policy.pass_times:
            passes.setdefault(name, []).append(seconds)
    assert engine is not None
    medians = {name: statistics.median(times) for name, times in passes.items()}
    return engine, statistics.median(loads), medians


def run_size(
    size: int, args: argparse.Namespace, peer_names: Sequence[str]
) -> tuple[list[Row], Compiled, Counter[str]]:
    w = make_workload(size, args.calls, args.seed)
    with tempfile.TemporaryDirectory(prefix="bench-decide-") as tmp:
        write_policy_dir(w, Path(tmp))
        engine, load_seconds, pass_seconds = compile_pe(Path(tmp), BUILD_REPS)
    with tempfile.TemporaryDirectory(prefix="bench-decide-") as tmp:
        write_policy_dir(w, Path(tmp), limited=True)
        limited = Engine.load(Path(tmp))
    requests = pe_requests(w.calls)
    reference = [engine.decide(r) for r in requests]
    check_reference(reference, w.calls, size)
    reasons = Counter(str(d.reason) for d in reference)
    check_same_answers(limited, requests, reference, size)
    given = pe_requests_with_identity(w)
    mismatch = sum(engine.decide(g).allow != d.allow for g, d in zip(given, reference, strict=True))
    if mismatch:
        raise Disagreement(f"identity given and API key disagree on {mismatch} calls at {size}")
    trie = build_trie(w)
    trie_inputs = [trie.prepare(c) for c in w.calls]
    check_agreement(trie, trie_inputs, reference, w.calls, size, range(len(trie_inputs)))
    same = build_trie_same_request(w, lambda c: pe_requests([c])[0])
    check_agreement(same, requests, reference, w.calls, size, range(len(requests)))
    slots: list[Entry | Row] = [
        Entry(PE_ROW, engine.decide, requests, args.reps),
        Entry(LIMITED_ROW, limited.decide, requests, args.reps),
        Entry(f"{PE} (identity given)", engine.decide, given, args.reps),
        Entry(trie.name, trie.call, trie_inputs, args.reps),
        Entry(same.name, same.call, requests, args.reps),
    ]
    built = [trie, same]
    for name in peer_names:
        slot, peer = plan_peer(name, PEER_BUILDERS[name], w, reference, size, args)
        slots.append(slot)
        built += [peer] if peer is not None else []
    timings = measure_side_by_side([s for s in slots if isinstance(s, Entry)])
    rows = [s if isinstance(s, Row) else Row(size, s.name, timings[s.name]) for s in slots]
    peer_seconds = {c.name: c.build_seconds for c in built}
    peer_steps = {c.name: c.build_step for c in built}
    return rows, Compiled(size, load_seconds, pass_seconds, peer_seconds, peer_steps), reasons


def plan_peer(
    name: str,
    build: Callable[[Workload], Contender],
    w: Workload,
    reference: Sequence[Decision],
    size: int,
    args: argparse.Namespace,
) -> tuple[Entry | Row, Contender | None]:
    """Build a peer and check it on as many calls as its budget allows to time (never fewer
    than PEER_MIN_CALLS: a peer that would need over `--peer-limit` for those is skipped)."""
    try:
        peer = build(w)
    except ImportError:
        return Row(size, name, None, "not installed (make bench installs it)"), None
    inputs = [peer.prepare(c) for c in w.calls]
    check_agreement(peer, inputs, reference, w.calls, size, range(PROBE_CALLS))  # warm-up
    started = time.perf_counter()
    check_agreement(peer, inputs, reference, w.calls, size, range(PROBE_CALLS, 2 * PROBE_CALLS))
    per_call = (time.perf_counter() - started) / PROBE_CALLS
    passes = 1 + 2 * args.peer_reps  # the agreement check, then latency and throughput
    estimate = per_call * PEER_MIN_CALLS * passes
    if estimate > args.peer_limit:
        return Row(size, name, None, f"skipped (too slow: est. {estimate:.0f} s)"), peer
    affordable = int(args.peer_budget / (per_call * passes))
    count = min(len(inputs), PEER_MAX_CALLS, max(PEER_MIN_CALLS, affordable))
    check_agreement(peer, inputs, reference, w.calls, size, range(count))
    return Entry(name, peer.call, inputs[:count], args.peer_reps), peer


# -- report ----------------------------------------------------------------------------


def version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or "unknown cpu"


def print_header(args: argparse.Namespace) -> None:
    print(
        f"bench/decide.py: Python {platform.python_version()}, {cpu_model()}, "
        f"seed {args.seed}, {args.reps} repetitions (medians)"
    )
    print(
        f"versions: policyengine {version('policyengine')}, pycasbin {version('pycasbin')}, "
        f"cedarpy {version('cedarpy')}, gordon-to-regorus {version('gordon-to-regorus')}"
    )
    print(
        "workload: routes GET/POST /api/svc{i}/items, GET/DELETE /api/svc{i}/items/{id:int}, "
        "GET /api/svc{i}/items/{id}/sub/{sub};\n  roles g{k}-viewer < g{k}-editor < g{k}-admin "
        "per group of 10 services; one API key per role (keys file of sha256 hashes)"
    )
    print(
        "peers' idioms: pycasbin RBAC model (keyMatch2, g role links), Enforcer; cedarpy one "
        "permit per route\n  (`like` on the path, roles as parent entities), parsed handles; "
        "regorus OPA's RBAC example\n  (user_roles, role_grants, graph.reachable); bare trie: "
        "dict per segment, no normalization, typing or backtracking"
    )
    print(
        "given per call: policyengine a Request with an X-API-Key header and 6 usual forwarded "
        "headers\n  (normalize, match, key lookup, rules, Decision); peers and the trie the "
        "subject (or `anonymous`)\n  directly: no headers, no key lookup, which is generous "
        "to them; `bare trie, same request` gets\n  policyengine's Request (X-API-Key as "
        "spelled, sha256 lookup, path split)"
    )
    print(
        "timing: one thread; p50/p99 from perf_counter_ns around each call (its own overhead, "
        f"{clock_overhead_ns()} ns, included);\n  decisions/s from a separate loop; peers on a "
        "prefix of the same calls, as many as their time budget allows\n"
    )


def print_mix(size: int, reasons: Counter[str]) -> None:
    total = sum(reasons.values())
    parts = ", ".join(f"{reason} {100 * n / total:.0f}%" for reason, n in reasons.most_common())
    print(f"  {size:>6,} routes, {total:,} calls: {parts}")


def print_latency(rows: Sequence[Row]) -> None:
    print(
        f"{'routes':>7}  {'engine':<34}{'calls':>7}{'p50 µs':>10}{'p99 µs':>10}"
        f"{'decisions/s':>13}{'p50 vs PE':>11}"
    )
    reference = {r.size: r.timing.p50_ns for r in rows if r.name == PE_ROW and r.timing}
    for row in rows:
        if row.timing is None:
            print(f"{row.size:>7,}  {row.name:<34}{row.note}")
            continue
        t = row.timing
        ratio = t.p50_ns / reference[row.size]
        print(
            f"{row.size:>7,}  {row.name:<34}{t.calls:>7,}{t.p50_ns / 1000:>10.2f}"
            f"{t.p99_ns / 1000:>10.2f}{t.per_second:>13,.0f}{ratio:>10.2f}x"
        )


def print_compile(compiled: Sequence[Compiled]) -> None:
    sizes = "".join(f"{c.size:>12,}" for c in compiled)
    print(f"{f'compile time, ms (median of {BUILD_REPS})':<36}{sizes}")
    print(
        f"{'policyengine Engine.load':<36}"
        + "".join(f"{c.load_seconds * 1e3:>12.1f}" for c in compiled)
    )
    parse = [c.load_seconds - sum(c.pass_seconds.values()) for c in compiled]
    print(f"{'  parse (load minus passes)':<36}" + "".join(f"{s * 1e3:>12.1f}" for s in parse))
    for name in dict.fromkeys(name for c in compiled for name in c.pass_seconds):
        cells = "".join(f"{c.pass_seconds.get(name, 0.0) * 1e3:>12.2f}" for c in compiled)
        print(f"{'  pass ' + name:<36}{cells}")
    steps = {name: step for c in compiled for name, step in c.peer_steps.items()}
    for name, step in steps.items():
        cells = "".join(
            f"{c.peer_seconds[name] * 1e3:>12.1f}" if name in c.peer_seconds else f"{'-':>12}"
            for c in compiled
        )
        print(f"{f'{name}: {step}':<36}{cells}")


def print_targets(rows: Sequence[Row]) -> None:
    p50 = {
        r.size: r.timing.p50_ns / 1000 for r in rows if r.timing is not None and r.name == PE_ROW
    }
    for trie in TRIES:
        theirs = {r.size: r.timing.p50_ns / 1000 for r in rows if r.timing and r.name == trie}
        ratios = {size: p50[size] / theirs[size] for size in p50}  # both tries run at every size
        met = "met" if max(ratios.values()) <= TARGET_TRIE_RATIO else "MISSED"
        cells = ", ".join(f"{ratio:.2f}x at {size:,}" for size, ratio in ratios.items())
        print(f"target within {TARGET_TRIE_RATIO}x of `{trie}`: {cells}, {met}")
    largest = max(p50)
    met = "met" if p50[largest] <= TARGET_P50_US else "MISSED"
    print(f"target p50 <= {TARGET_P50_US} µs at {largest:,} routes: {p50[largest]:.2f} µs, {met}")
    if 100 in p50 and largest > 100:
        flat = p50[largest] / p50[100]
        met = "met" if flat <= TARGET_FLATNESS else "MISSED"
        print(
            f"target flat within {TARGET_FLATNESS}x from 100 to {largest:,} routes: "
            f"{flat:.2f}x, {met}"
        )


def _peer_names(text: str) -> list[str]:
    names = [name for name in text.split(",") if name]
    unknown = sorted(set(names) - set(PEER_BUILDERS))
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown peer {', '.join(unknown)} (peers: {', '.join(PEER_BUILDERS)})"
        )
    return names


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes", default="10,100,1000,10000", type=lambda s: [int(n) for n in s.split(",")]
    )
    parser.add_argument("--calls", type=int, default=20000, help="calls per size")
    parser.add_argument("--reps", type=int, default=5, help="repetitions (medians reported)")
    parser.add_argument("--peer-reps", type=int, default=3, help="repetitions for peers")
    parser.add_argument(
        "--peer-budget",
        type=float,
        default=20.0,
        help="seconds per peer and size that size its number of calls",
    )
    parser.add_argument(
        "--peer-limit",
        type=float,
        default=60.0,
        help="skip a peer whose fewest calls would take longer than this (seconds)",
    )
    parser.add_argument("--peers", default=",".join(PEER_BUILDERS), type=_peer_names)
    parser.add_argument("--seed", type=int, default=7)
    return parser.parse_args(argv)


def main(argv: Sequence[str]) -> None:
    args = parse_args(argv)
    started = time.perf_counter()
    print_header(args)
    rows: list[Row] = []
    compiled: list[Compiled] = []
    print("decisions by reason (policyengine; every contender is held to its allow/deny):")
    for size in args.sizes:
        size_rows, size_compiled, reasons = run_size(size, args, args.peers)
        rows += size_rows
        compiled.append(size_compiled)
        print_mix(size, reasons)
    print()
    print_latency(rows)
    print()
    print_compile(compiled)
    print()
    print_targets(rows)
    print(f"bench time: {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main(sys.argv[1:])
