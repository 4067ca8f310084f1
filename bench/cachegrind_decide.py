"""Cache misses per Engine.decide, counted by cachegrind's simulated caches: repeatable
where wall-clock time at 10,000 routes is not.

For each policy size it runs the decide.py workload (API key per call) twice under
`valgrind --tool=cachegrind --cache-sim=yes`: once building the engine and warming it
up (one decision per call), once doing the same and then deciding every call again.
The difference between the two runs, divided by the calls, is the cost of one decision:
instructions, and data misses in each of cachegrind's two simulated cache levels. The
first level ("D1") is simulated at 1 MiB by default, the size of this machine's L2:
at 32 KiB its misses are mostly the interpreter's own code and data evicting each
other, and that noise hides the policy's. The last level is simulated at 4 MiB, as a
share of an L3 that other processes use, which is where a large policy's cold
objects cost.

    .venv/bin/python bench/cachegrind_decide.py [--sizes 100,10000] [--d1-kib 1024]
        [--ll-mib 4] [--keep DIR]

Each run builds the policy under valgrind: about 5 minutes for both runs at 10,000 routes.
"""

from __future__ import annotations

import argparse
import gc
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from decide import pe_requests
from workload import make_workload, write_policy_dir

from policyengine import Engine


@dataclass(frozen=True, slots=True)
class Counts:
    instructions: int
    d1_misses: int  # reads and writes
    ll_misses: int  # data reads and writes

    def minus(self, other: Counts) -> Counts:
        return Counts(
            self.instructions - other.instructions,
            self.d1_misses - other.d1_misses,
            self.ll_misses - other.ll_misses,
        )


def run_workload(size: int, calls: int, seed: int, measured: bool) -> None:
    """The inner run, under valgrind: build, warm up, then (if `measured`) decide again.

    No garbage collection runs: one that ran in one run and not the other (their
    allocations differ by a few objects) would count as the decisions' misses."""
    gc.disable()
    w = make_workload(size, calls, seed)
    # the requests first: where the policy's build leaves holes then moves no request,
    # and the misses on the requests are the same for every version of the engine
    requests = pe_requests(w.calls)
    with tempfile.TemporaryDirectory(prefix="bench-cachegrind-") as tmp:
        write_policy_dir(w, Path(tmp))
        engine = Engine.load(Path(tmp))
    decide = engine.decide
    for request in requests:
        decide(request)
    if measured:
        for request in requests:
            decide(request)
    sys.stdout.flush()
    os._exit(0)  # both runs skip the same teardown


def cachegrind(size: int, args: argparse.Namespace, measured: bool) -> Counts:
    with tempfile.TemporaryDirectory(prefix="cachegrind-") as tmp:
        name = f"cachegrind.{size}.{'measured' if measured else 'warm'}.out"
        out = Path(args.keep or tmp) / name
        command = [
            "valgrind",
            "--tool=cachegrind",
            "--cache-sim=yes",
            f"--I1={32 * 1024},8,64",
            f"--D1={args.d1_kib * 1024},8,64",
            f"--LL={args.ll_mib * 1024 * 1024},16,64",
            f"--cachegrind-out-file={out}",
            sys.executable,
            __file__,
            "--inner",
            "--sizes",
            str(size),
            "--calls",
            str(args.calls),
            "--seed",
            str(args.seed),
        ]
        if measured:
            command.append("--measured")
        env = {**os.environ, "PYTHONHASHSEED": "0"}  # the same dict layouts in both runs
        subprocess.run(command, check=True, env=env, capture_output=True)
        return parse_summary(out.read_text())


def parse_summary(text: str) -> Counts:
    events: list[str] = []
    totals: list[int] = []
    for line in text.splitlines():
        if line.startswith("events:"):
            events = line.split()[1:]
        elif line.startswith("summary:"):
            totals = [int(n) for n in line.split()[1:]]
    count = dict(zip(events, totals, strict=True))
    return Counts(count["Ir"], count["D1mr"] + count["D1mw"], count["DLmr"] + count["DLmw"])


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes", default="100,10000", type=lambda s: [int(n) for n in s.split(",")]
    )
    parser.add_argument("--calls", type=int, default=20000, help="decisions measured")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--d1-kib", type=int, default=1024, help="simulated D1 size")
    parser.add_argument("--ll-mib", type=int, default=4, help="simulated LL size")
    parser.add_argument(
        "--keep", metavar="DIR", help="keep the cachegrind files here (cg_diff, cg_annotate)"
    )
    parser.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--measured", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str]) -> None:
    args = parse_args(argv)
    if args.inner:
        run_workload(args.sizes[0], args.calls, args.seed, args.measured)
        return
    print(
        f"bench/cachegrind_decide.py: per Engine.decide (API key per call), {args.calls:,} "
        f"calls, seed {args.seed};\n  simulated D1 {args.d1_kib} KiB 8-way, "
        f"LL {args.ll_mib} MiB 16-way, 64-byte lines"
    )
    d1, ll = f"misses {args.d1_kib} KiB", f"misses {args.ll_mib} MiB"
    print(f"{'routes':>7}{'instructions':>14}{d1:>18}{ll:>16}")
    per_size: dict[int, tuple[float, float, float]] = {}
    for size in args.sizes:
        cost = cachegrind(size, args, True).minus(cachegrind(size, args, False))
        n = args.calls
        per = (cost.instructions / n, cost.d1_misses / n, cost.ll_misses / n)
        per_size[size] = per
        print(f"{size:>7,}{per[0]:>14,.0f}{per[1]:>18.1f}{per[2]:>16.1f}", flush=True)
    smallest, largest = min(per_size), max(per_size)
    if largest != smallest:
        a, b = per_size[smallest], per_size[largest]
        print(
            f"{largest:,} over {smallest:,} routes: instructions {b[0] / a[0]:.2f}x, "
            f"{d1} {b[1] / a[1]:.2f}x, {ll} {b[2] / a[2]:.2f}x"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
