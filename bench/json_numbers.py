"""What reading numbers as written costs: parse_json today against the same strict parser
with the previous float hook (float() and a finiteness check, no exactness check).

Bodies: the retail Order (integers only), 1,000 prices with two decimals (the fast path:
at most 15 digits, no exponent), and 1,000 doubles as JavaScript's JSON.stringify writes
them (up to 17 digits: the slow path, two Decimals each). Medians of several repetitions,
µs per parse.

    .venv/bin/python bench/json_numbers.py [--repeats 7]
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import time
from collections.abc import Callable
from typing import Any

from policyengine import jsonbody
from policyengine.jsonbody import parse_json


def _old_float(text: str) -> float:
    if len(text) > jsonbody.MAX_NUMBER_CHARS:
        raise jsonbody.InvalidJson("too long")
    value = float(text)
    if not math.isfinite(value):
        raise jsonbody.InvalidJson("a number is out of range")
    return value


_OLD = json.JSONDecoder(
    object_pairs_hook=jsonbody._object,
    parse_constant=jsonbody._reject_constant,
    parse_int=jsonbody._int,
    parse_float=_old_float,
)


def old_parse(data: bytes) -> Any:
    """parse_json as it was: the same checks around the same C scanner, the old hook."""
    current = jsonbody._DECODER
    jsonbody._DECODER = _OLD
    try:
        return parse_json(data)
    finally:
        jsonbody._DECODER = current


def bodies() -> dict[str, bytes]:
    rng = random.Random(7)
    prices = [round(rng.uniform(0, 1000), 2) for _ in range(1000)]
    doubles = [rng.uniform(-180, 180) for _ in range(1000)]
    return {
        "Order (ints)": b'{"productId": "ABCD1234", "quantity": 2, "note": "leave at door"}',
        "1000 prices (x.yy)": json.dumps({"prices": prices}).encode(),
        "1000 doubles (17 digits)": json.dumps({"points": doubles}).encode(),
    }


def per_call_us(fn: Callable[[bytes], Any], body: bytes, repeats: int) -> float:
    calls = max(1, int(20_000 / max(1, len(body) // 64)))
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            fn(body)
        samples.append((time.perf_counter() - start) / calls * 1e6)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    print(f"{'body':28} {'previous µs':>12} {'exact µs':>10} {'ratio':>6}")
    for name, body in bodies().items():
        assert old_parse(body) == parse_json(body)
        before = per_call_us(old_parse, body, args.repeats)
        after = per_call_us(parse_json, body, args.repeats)
        print(f"{name:28} {before:12.1f} {after:10.1f} {after / before:6.2f}")


if __name__ == "__main__":
    main()
