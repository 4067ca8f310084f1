"""JSON Schema validators side by side on our workload, and the input step's cost per request.

The schemas are the JSON Schema documents the policy compiler produces (what `policyengine
schema export` prints) for two inline schemas: the retail `Order` of LANGUAGE.md and a
nested `Delivery` with arrays of objects and formats. Each library compiles the same
document once; each is then timed on a valid and an invalid body (already parsed), with
every library asked for what the engine needs: a verdict, and on invalid bodies the
violations with their paths (fastjsonschema can only give the first). Medians of several
repetitions, in µs per call.

Then: a catastrophic-backtracking pattern, and Engine.decide with and without a `body`
rule on the same route, which is the whole input step (size check, strict parse, validate).

    .venv/bin/python bench/schema.py [--repeats 7]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable
from importlib import metadata
from typing import Any

import fastjsonschema
import jsonschema
import jsonschema_rs

from policyengine import Engine, Request
from policyengine.jsonbody import parse_json
from policyengine.schema import SchemaValidator

POLICY = """
schema Order {
    productId: string matching "^[A-Z0-9]{8}$"
    quantity:  int 1..100
    note?:     string len ..200
}
schema Stop {
    lat: number -90..90
    lon: number -180..180
    name: string len 1..80
    window?: string format date-time
}
schema Customer { id: string format uuid; email: string format email; tier: "free" | "pro" }
schema Delivery {
    customer: Customer
    stops: [Stop] len 1..50
    tags: [string len 1..20] len ..10
    priority: int 1..5
    express?: bool
}
route POST /orders { allow anyone; body Order }
route POST /plain { allow anyone }
route POST /deliveries { allow anyone; body Delivery }
"""

ORDER_OK = {"productId": "ABCD1234", "quantity": 2, "note": "leave at the door"}
ORDER_BAD = {"productId": "abcd", "quantity": 0, "note": 5, "coupon": "X"}
STOP = {"lat": 52.52, "lon": 13.4, "name": "Alexanderplatz", "window": "2026-05-01T10:00:00Z"}
DELIVERY_OK = {
    "customer": {
        "id": "123e4567-e89b-12d3-a456-426614174000",
        "email": "ops@example.test",
        "tier": "pro",
    },
    "stops": [dict(STOP, name=f"stop {i}") for i in range(20)],
    "tags": ["fragile", "cold"],
    "priority": 2,
}
DELIVERY_BAD = {
    **DELIVERY_OK,
    "customer": {**DELIVERY_OK["customer"], "email": "nobody"},
    "stops": [*DELIVERY_OK["stops"][:19], {**STOP, "lat": 91, "name": ""}],
}
UUID = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
REDOS_PATTERN = "^(a+)+$"
REDOS_N = 22  # Python's `re` backtracks ~2**N steps on "a"*N + "!"

Check = Callable[[Any], object]


def contenders(document: dict[str, Any]) -> dict[str, tuple[Check, Check]]:
    """name -> (verdict, violations) for one compiled document."""
    rs = jsonschema_rs.validator_for(
        document, validate_formats=True, pattern_options=jsonschema_rs.RegexOptions()
    )
    ours = SchemaValidator(document)
    fast = fastjsonschema.compile(document, formats={"uuid": UUID})
    py = jsonschema.Draft202012Validator(
        document, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )

    def fast_first_error(value: Any) -> object:
        try:
            return fast(value)
        except fastjsonschema.JsonSchemaValueException as err:
            return (err.path, err.message)

    return {
        "jsonschema-rs": (
            rs.is_valid,
            lambda v: [(e.instance_path, e.message) for e in rs.iter_errors(v)],
        ),
        "policyengine (jsonschema-rs)": (ours, ours),
        "fastjsonschema": (fast_first_error, fast_first_error),
        "jsonschema": (
            py.is_valid,
            lambda v: [(e.absolute_path, e.message) for e in py.iter_errors(v)],
        ),
    }


def side_by_side(
    cases: dict[str, tuple[Check, Any]], repeats: int, budget_s: float = 0.03
) -> dict[str, float]:
    """µs per call for each case; repetitions interleave the cases, so a noisy neighbour on
    a shared machine slows every contender alike, and the median drops the outliers."""
    loops = {name: _calls_for(fn, value, budget_s) for name, (fn, value) in cases.items()}
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(repeats):
        for name, (fn, value) in cases.items():
            calls = loops[name]
            started = time.perf_counter_ns()
            for _ in range(calls):
                fn(value)
            samples[name].append((time.perf_counter_ns() - started) / calls / 1000)
    return {name: statistics.median(values) for name, values in samples.items()}


def _calls_for(fn: Check, value: Any, budget_s: float) -> int:
    calls = 1
    while True:
        started = time.perf_counter()
        for _ in range(calls):
            fn(value)
        if time.perf_counter() - started > budget_s or calls > 1 << 20:
            return calls
        calls *= 4


def compile_ms(document: dict[str, Any]) -> dict[str, float]:
    builders: dict[str, Check] = {
        "jsonschema-rs": lambda d: jsonschema_rs.validator_for(
            d, validate_formats=True, pattern_options=jsonschema_rs.RegexOptions()
        ),
        "policyengine (jsonschema-rs)": SchemaValidator,
        "fastjsonschema": lambda d: fastjsonschema.compile(d, formats={"uuid": UUID}),
        "jsonschema": jsonschema.Draft202012Validator,
    }
    cases = {name: (build, document) for name, build in builders.items()}
    return {name: us / 1000 for name, us in side_by_side(cases, 3, 0.1).items()}


def redos_ms() -> dict[str, str]:
    document = {"type": "string", "pattern": REDOS_PATTERN}
    text = "a" * REDOS_N + "!"
    checks: dict[str, Check] = {
        "jsonschema-rs": jsonschema_rs.validator_for(
            document, pattern_options=jsonschema_rs.RegexOptions()
        ).is_valid,
        "policyengine (jsonschema-rs)": SchemaValidator(document),
        "fastjsonschema": contenders(document)["fastjsonschema"][0],
        "jsonschema": jsonschema.Draft202012Validator(document).is_valid,
    }
    result = {}
    for name, check in checks.items():
        started = time.perf_counter()
        check(text)
        result[name] = f"{(time.perf_counter() - started) * 1000:,.2f}"
    long_text = "a" * 100_000 + "!"
    started = time.perf_counter()
    SchemaValidator(document)(long_text)
    result["policyengine, 100k chars"] = f"{(time.perf_counter() - started) * 1000:,.2f}"
    return result


def engine_rows(repeats: int) -> list[tuple[str, float]]:
    engine = Engine.from_text(POLICY)
    json_header = {"Content-Type": "application/json"}
    order = json.dumps(ORDER_OK).encode()
    delivery = json.dumps(DELIVERY_OK).encode()

    def decide(path: str, body: bytes) -> Check:
        request = Request("POST", path, json_header, body)
        assert engine.decide(request).allow
        return lambda _: engine.decide(request)

    validate_order = engine.policy.schemas["Order"].validate
    validate_delivery = engine.policy.schemas["Delivery"].validate
    cases: dict[str, tuple[Check, Any]] = {
        "decide, route without `body` (Order bytes)": (decide("/plain", order), None),
        f"decide, `body Order` (valid, {len(order)} B)": (decide("/orders", order), None),
        "  Order: parse_json alone": (parse_json, order),
        "  Order: validate alone": (validate_order, ORDER_OK),
        f"decide, `body Delivery` (valid, {len(delivery)} B)": (
            decide("/deliveries", delivery),
            None,
        ),
        "  Delivery: parse_json alone": (parse_json, delivery),
        "  Delivery: validate alone": (validate_delivery, DELIVERY_OK),
    }
    return list(side_by_side(cases, repeats).items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    engine = Engine.from_text(POLICY)
    documents = {name: engine.policy.schemas[name].json_schema for name in ("Order", "Delivery")}
    bodies = {"Order": (ORDER_OK, ORDER_BAD), "Delivery": (DELIVERY_OK, DELIVERY_BAD)}
    versions = ", ".join(
        f"{p} {metadata.version(p)}" for p in ("jsonschema-rs", "fastjsonschema", "jsonschema")
    )
    print(f"python {platform.python_version()} on {platform.machine()}; {versions}")
    print(f"median of {args.repeats} repetitions, µs per call unless noted\n")

    names = list(contenders(documents["Order"]))
    table: dict[str, dict[str, str]] = {}
    for schema_name, document in documents.items():
        good, bad = bodies[schema_name]
        runs = contenders(document)
        valid = side_by_side({n: (verdict, good) for n, (verdict, _) in runs.items()}, args.repeats)
        invalid = side_by_side({n: (report, bad) for n, (_, report) in runs.items()}, args.repeats)
        compiled = compile_ms(document)
        table[f"{schema_name}: valid body"] = {n: f"{us:,.1f}" for n, us in valid.items()}
        table[f"{schema_name}: invalid, violations"] = {
            n: f"{us:,.1f}" for n, us in invalid.items()
        }
        table[f"{schema_name}: compile (ms)"] = {n: f"{ms:,.2f}" for n, ms in compiled.items()}
    table[f"`{REDOS_PATTERN}` on 'a'*{REDOS_N}+'!' (ms)"] = redos_ms()
    table["violations reported"] = dict.fromkeys(names, "all, with paths") | {
        "fastjsonschema": "first only"
    }
    table["draft 2020-12"] = dict.fromkeys(names, "yes") | {"fastjsonschema": "no (draft-07)"}
    _print_table(["workload", *names], table)
    print()
    _print_table(
        ["Engine.decide, the input step", "µs"],
        {label: {"µs": f"{us:,.1f}"} for label, us in engine_rows(args.repeats)},
    )
    extra = redos_ms()["policyengine, 100k chars"]
    print(
        f"\npolicyengine on `{REDOS_PATTERN}` with 'a'*100000+'!': {extra} ms (linear-time regex)"
    )


def _print_table(header: list[str], rows: dict[str, dict[str, str]]) -> None:
    widths = [max(len(header[0]), *(len(r) for r in rows))]
    widths += [max(len(h), *(len(cells.get(h, "")) for cells in rows.values())) for h in header[1:]]
    print(" | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    print("-|-".join("-" * w for w in widths))
    for label, cells in rows.items():
        values = [label.ljust(widths[0])]
        values += [cells.get(h, "").rjust(w) for h, w in zip(header[1:], widths[1:], strict=True)]
        print(" | ".join(values))


if __name__ == "__main__":
    main()
