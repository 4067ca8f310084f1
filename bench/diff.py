"""`policyengine diff` on a generated 10,000-route policy set: how long a review takes.

Two sets are written to a temporary directory: OLD with ROUTES routes over 20 files
(roles with inheritance, conditions, limits, body schemas, an authn block), and NEW, the
same set with its files in another order, reformatted, and CHANGES routes edited (a role
widened, a limit swapped, a condition dropped, one added) and one route added. Timed
in-process, each stage once (parse, compile, summarize, diff; about 15 s at 10,000
routes); with --command, also the whole command as a user runs it, a fresh process.

    .venv/bin/python bench/diff.py [--routes 10000] [--changes 10] [--command]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from policyengine.analysis.diff import diff
from policyengine.analysis.sources import PlaceholderEnviron
from policyengine.analysis.summary import PolicySummary, summarize
from policyengine.compile import compile_with_state
from policyengine.loader import load_policy_set

FILES = 20
HEADER = """policy "bench"
authn api_key {
    header "X-API-Key"
    keys file "keys.yaml"
}
role viewer
role user inherits viewer
role admin inherits user
schema Item { sku: string len 1..20; qty: int 1..100 }
limit per_user 10 per 10s by subject
limit per_ip 100 per minute by client_ip
"""
T = TypeVar("T")
KEYS = 'keys:\n  - {sha256: "' + "ab" * 32 + '", subject: s, roles: [user]}\n'


def route(i: int, changed: bool) -> str:
    group = f"/svc{i // 100}"
    kind = i % 4
    if kind == 0:
        who = "allow role viewer" if changed else "allow role user"
        return f"route GET {group}/items{i}/{{id:int}} {{ {who} }}\n"
    if kind == 1:
        limit = "per_ip" if changed else "per_user"
        rules = f"  allow role user\n  body Item\n  limit {limit}\n"
        return f"route POST {group}/items{i} {{\n{rules}}}\n"
    if kind == 2:
        when = "" if changed else " when claims.tenant == path.tenant"
        rules = f"  allow role viewer{when}\n  allow role admin\n"
        return f"route GET {group}/reports{i}/{{tenant}} {{\n{rules}}}\n"
    when = " when path.id > 0" if changed else ""
    return f"route DELETE {group}/items{i}/{{id:int}} {{ allow role admin{when} }}\n"


def write_set(directory: Path, routes: int, changes: int, new: bool) -> None:
    directory.mkdir()
    (directory / "keys.yaml").write_text(KEYS)
    (directory / "a_header.policy").write_text(HEADER)
    step = max(1, routes // max(1, changes))
    chunks: list[list[str]] = [[] for _ in range(FILES)]
    for i in range(routes):
        text = route(i, new and i % step == i // step % 4)  # each kind of edit
        chunks[i % FILES].append(text.replace("{ ", "{  ") if new else text)  # reformatted
    if new:
        chunks[0].append("route GET /added { allow anyone }\n")
    for n, chunk in enumerate(chunks):
        name = f"routes_{FILES - n:02d}.policy" if new else f"routes_{n:02d}.policy"
        (directory / name).write_text("".join(reversed(chunk) if new else chunk))


def timed(fn: Callable[[], T]) -> tuple[T, float]:
    started = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - started


def summarize_dir(directory: Path) -> PolicySummary:
    return summarize(
        *compile_with_state(load_policy_set(directory), environ=PlaceholderEnviron(), lints=False)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--routes", type=int, default=10_000)
    parser.add_argument("--changes", type=int, default=10)
    parser.add_argument("--command", action="store_true", help="also time a fresh process")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        old, new = Path(tmp) / "old", Path(tmp) / "new"
        write_set(old, args.routes, args.changes, new=False)
        write_set(new, args.routes, args.changes, new=True)
        print(f"{args.routes} routes in {FILES + 1} files, {args.changes} edited, 1 added")
        policy_set, parse_s = timed(lambda: load_policy_set(old))
        (policy, state), compile_s = timed(
            lambda: compile_with_state(policy_set, environ=PlaceholderEnviron(), lints=False)
        )
        before, summary_s = timed(lambda: summarize(policy, state))
        after, both_s = timed(lambda: summarize_dir(new))
        found, diff_s = timed(lambda: diff(before, after))
        widening = sum(1 for c in found if c.widens)
        print(f"  parse one set      {parse_s:6.2f}s")
        print(f"  compile one set    {compile_s:6.2f}s")
        print(f"  summarize one set  {summary_s:6.2f}s")
        print(f"  diff               {diff_s:6.2f}s  ({len(found)} changes, {widening} widen)")
        total = parse_s + compile_s + summary_s + both_s + diff_s
        print(f"  diff OLD NEW, in-process total {total:.2f}s")
        if args.command:
            command = [sys.executable, "-m", "policyengine", "diff", str(old), str(new),
                       "--format", "json"]  # fmt: skip
            _, whole = timed(lambda: subprocess.run(command, capture_output=True, check=True))
            print(f"  policyengine diff OLD NEW --format json (a fresh process) {whole:.2f}s")


if __name__ == "__main__":
    main()
