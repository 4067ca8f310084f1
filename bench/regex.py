"""`matches` on Python's `re` against the linear engine policies use (policyengine/regex.py).

One table, both engines side by side on the same patterns and inputs: typical
conditions on typical header values (per-call medians, µs), then adversarial inputs
(seconds for one search; Python's `re` is stopped at a size where it still finishes).

    .venv/bin/python bench/regex.py
"""

from __future__ import annotations

import re
import statistics
import time
from collections.abc import Callable

from policyengine.regex import compile_regex

TYPICAL = [
    ("^curl/[0-9]+", "curl/8.5.0"),
    (r"^[a-z0-9-]+\.example\.com$", "api-eu.example.com"),
    ("(?i)bot|crawler|spider", "Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0"),
    (r"^[0-9a-f]{40}$", "3f786850e387550fdab836ed7e6dc881de23001b"),
]
ADVERSARIAL = [
    ("^(a+)+$", "a" * 26 + "!"),
    (r"\s+$", " " * 20_000 + "x"),
    (r"^(\w+\s?)*$", "word " * 6 + "!" * 1),
]


def per_call_us(search: Callable[[str], object], text: str, calls: int = 20_000) -> float:
    runs = []
    for _ in range(7):
        started = time.perf_counter()
        for _ in range(calls):
            search(text)
        runs.append((time.perf_counter() - started) / calls * 1e6)
    return statistics.median(runs)


def once_s(search: Callable[[str], object], text: str) -> float:
    started = time.perf_counter()
    search(text)
    return time.perf_counter() - started


def main() -> None:
    print(f"{'pattern':34} {'input':>10} {'re':>12} {'linear':>12} {'ratio':>7}")
    for pattern, text in TYPICAL:
        backtracking, linear = re.compile(pattern), compile_regex(pattern)
        a, b = per_call_us(backtracking.search, text), per_call_us(linear.search, text)
        print(f"{pattern:34} {len(text):>8} B {a:>9.3f} µs {b:>9.3f} µs {b / a:>6.2f}x")
    for pattern, text in ADVERSARIAL:
        backtracking, linear = re.compile(pattern), compile_regex(pattern)
        a, b = once_s(backtracking.search, text), once_s(linear.search, text)
        print(f"{pattern:34} {len(text):>8} B {a:>10.4f} s {b:>10.6f} s {b / a:>6.4f}x")


if __name__ == "__main__":
    main()
