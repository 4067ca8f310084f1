"""Where the time of one Engine.decide goes: each step timed apart, on the decide.py workload.

Reaches into the engine's private steps on purpose (a profile, not an API), so it
follows the engine's code: when a step is renamed, this script is updated with it.
Each step runs in a loop over the allowed calls of the workload (every step runs
for those), inputs prepared untimed; the cost of calling an empty function the
same way is subtracted; the least of several repetitions is kept. Then the full
decide in the same loop, and its p50 per decision reason, for comparison.

    .venv/bin/python bench/steps.py [--sizes 100,10000] [--calls 20000]
"""

from __future__ import annotations

import argparse
import gc
import re
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from decide import pe_requests
from workload import make_workload, write_policy_dir

from policyengine import Engine, Reason, Request
from policyengine.answers import who
from policyengine.authn.api_key import ApiKeyAuthenticator, key_digest
from policyengine.authorize import check_rules
from policyengine.context import RequestContext
from policyengine.decision import new_decision
from policyengine.engine import MatchedContext
from policyengine.inputs import check_input
from policyengine.paths import normalize_target

Step = tuple[str, Callable[[Any], Any], Callable[[], list[Any]]]


def loop_ns(fn: Callable[[Any], Any], make_inputs: Callable[[], list[Any]], reps: int) -> float:
    """Time per call of `fn` in a loop, less that of an empty function called the same way.

    Each is the least over reps, as timeit advises: load from elsewhere only adds time.
    """
    spent, empty = [], []
    for _ in range(reps):
        inputs = make_inputs()
        gc.collect()
        spent.append(_loop(fn, inputs))
        empty.append(_loop(_empty, inputs))
    return min(spent) - min(empty)


def _loop(fn: Callable[[Any], Any], inputs: list[Any]) -> float:
    started = time.perf_counter_ns()
    for item in inputs:
        fn(item)
    return (time.perf_counter_ns() - started) / len(inputs)


def _empty(item: Any) -> None:
    return None


def steps_for(engine: Engine, requests: list[Request]) -> list[Step]:
    """The steps of an allowed decision, each with a maker of fresh inputs for it."""
    tree, clock = engine.policy.tree, engine.clock
    targets = [normalize_target(r.path) for r in requests]
    segments = [s for s, _ in targets]

    def contexts(with_identity: bool) -> list[MatchedContext]:
        made = [_routed(engine, request) for request in requests]
        if with_identity:
            for ctx in made:
                ctx.identity = api_key.authenticate(ctx)
        return made

    api_key = _api_key_authenticator(contexts(False)[0])
    keys = [r.headers["X-API-Key"] for r in requests]
    digests = [key_digest(k) for k in keys]
    decision_args = [_decision_args(engine, ctx) for ctx in contexts(True)]
    return [
        ("normalize (normalize_target)", _normalize, lambda: list(requests)),
        (
            "RequestContext(...) + clock()",
            lambda a: RequestContext(a[0], a[1], a[2], clock()),
            lambda: [(r, s, t[1]) for r, s, t in zip(requests, segments, targets, strict=True)],
        ),
        (
            "match (tree.match)",
            lambda a: tree.match(*a),
            lambda: [(s, r.method) for s, r in zip(segments, requests, strict=True)],
        ),
        ("authn (api_key presented + authenticate)", _authn(api_key), lambda: contexts(False)),
        ("  of which: header lookup (presented)", api_key.presented, lambda: contexts(False)),
        ("  of which: sha256 of the key", key_digest, lambda: list(keys)),
        ("  of which: keys dict lookup", api_key.identities.get, lambda: list(digests)),
        (
            "rules (authorize.check_rules)",
            lambda ctx: check_rules(engine.policy.name, ctx, ctx.route, None),
            lambda: contexts(True),
        ),
        (
            "finish (_finish: input check, Decision)",
            lambda ctx: engine._finish(ctx, ctx.route, None, None, None),
            lambda: contexts(True),
        ),
        (
            "  of which: check_input (no query, no body)",
            lambda ctx: check_input(ctx.route, ctx),
            lambda: contexts(True),
        ),
        (
            "  of which: new_decision(...) alone, by keyword",
            lambda a: new_decision(**a),
            lambda: list(decision_args),
        ),
    ]


def _authn(api_key: ApiKeyAuthenticator) -> Callable[[RequestContext], Any]:
    def authenticate(ctx: RequestContext) -> Any:
        return api_key.presented(ctx) and api_key.authenticate(ctx)

    return authenticate


def _routed(engine: Engine, request: Request) -> MatchedContext:
    """The context of a request after normalize and match, as the engine builds it."""
    ctx = engine._route(request, None)
    if not isinstance(ctx, MatchedContext):
        raise SystemExit(f"{request.method} {request.path} does not match a route")
    return ctx


def _normalize(request: Request) -> tuple[tuple[str, ...], str]:
    return normalize_target(request.path)


def _api_key_authenticator(ctx: MatchedContext) -> ApiKeyAuthenticator:
    for authenticator in ctx.route.authenticators:
        if isinstance(authenticator, ApiKeyAuthenticator):
            return authenticator
    raise SystemExit("the workload's routes have no api_key authenticator")


def _decision_args(engine: Engine, ctx: MatchedContext) -> dict[str, Any]:
    subject, roles = who(ctx)
    upstream = {"X-Auth-Subject": subject or "", "X-Auth-Roles": ",".join(roles)}
    return {
        "allow": True,
        "status": 200,
        "reason": Reason.ALLOW,
        "message": "allowed",
        "route": ctx.route.label,
        "rule": "site",
        "subject": subject,
        "roles": roles,
        "upstream_headers": upstream,
        "response_headers": {},
        "errors": (),
        "policy": engine.policy.name,
    }


def decide_by_reason(engine: Engine, requests: list[Request], reps: int) -> dict[str, float]:
    """Median ns per decide, by the decision's reason (p50 over every call of that reason)."""
    reasons = [str(engine.decide(r).reason) for r in requests]
    samples: dict[str, list[int]] = defaultdict(list)
    clock, decide = time.perf_counter_ns, engine.decide
    for _ in range(reps):
        gc.collect()
        for request, reason in zip(requests, reasons, strict=True):
            started = clock()
            decide(request)
            samples[reason].append(clock() - started)
    return {reason: statistics.median(times) for reason, times in samples.items()}


def match_by_shape(engine: Engine, requests: list[Request], reps: int) -> dict[str, float]:
    """ns per tree.match, by the shape of the route matched (`svc{i}` for the service)."""
    tree = engine.policy.tree
    by_shape: dict[str, list[tuple[tuple[str, ...], str]]] = defaultdict(list)
    for request in requests:
        ctx = _routed(engine, request)
        if ctx.route is not None:
            shape = re.sub(r"svc[0-9]+", "svc{i}", ctx.route.label)
            by_shape[shape].append((ctx.segments, request.method))
    return {
        f"  match {shape}": loop_ns(lambda a: tree.match(*a), items.copy, reps)
        for shape, items in sorted(by_shape.items())
    }


def profile_size(size: int, args: argparse.Namespace) -> dict[str, float]:
    w = make_workload(size, args.calls, args.seed)
    with tempfile.TemporaryDirectory(prefix="bench-steps-") as tmp:
        write_policy_dir(w, Path(tmp))
        engine = Engine.load(tmp)
    requests = pe_requests(w.calls)
    allowed = [r for r in requests if engine.decide(r).allow]
    column = {name: loop_ns(fn, make, args.reps) for name, fn, make in steps_for(engine, allowed)}
    full = loop_ns(engine.decide, allowed.copy, args.reps)
    top_level = sum(ns for name, ns in column.items() if not name.startswith(" "))
    column["engine glue (full decide minus the steps)"] = full - top_level
    column["full decide, allowed calls"] = full
    column.update(match_by_shape(engine, allowed, args.reps))
    for reason, ns in sorted(decide_by_reason(engine, requests, args.reps).items()):
        column[f"full decide p50, {reason}"] = ns
    return column


def main(argv: Sequence[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes", default="100,10000", type=lambda s: [int(n) for n in s.split(",")]
    )
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    columns = {size: profile_size(size, args) for size in args.sizes}
    names = list(dict.fromkeys(name for column in columns.values() for name in column))
    print("ns per call, allowed calls unless named (least of reps; empty-call cost subtracted)")
    print(f"{'step':<50}" + "".join(f"{f'{size:,} routes':>15}" for size in columns))
    for name in names:
        cells = "".join(f"{columns[size].get(name, float('nan')):>15.0f}" for size in columns)
        print(f"{name:<50}{cells}")


if __name__ == "__main__":
    main(sys.argv[1:])
