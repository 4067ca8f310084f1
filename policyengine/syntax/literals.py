"""Literal tokens of the policy language to values: strings, durations, sizes, numbers."""

from __future__ import annotations

import re

from policyengine.numbers import exact_float

_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
PERIOD_NAMES = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
_SIZE_UNITS = {
    "B": 1,
    "KB": 1000,
    "KiB": 1024,
    "MB": 1000**2,
    "MiB": 1024**2,
    "GB": 1000**3,
    "GiB": 1024**3,
}
_UNIT = re.compile(r"(\d+)([A-Za-z]+)")
_ESCAPE = re.compile(r'\\(["\\])')


def unquote(token: str) -> str:
    """`"a \\" b"` -> `a " b`. Only `\\"` and `\\\\` are escapes: `"\\d+"` stays a regex."""
    return _ESCAPE.sub(r"\1", token[1:-1])


def duration_seconds(text: str) -> float:
    number, unit = _UNIT.fullmatch(text).groups()  # type: ignore[union-attr]
    return int(number) * _DURATION_UNITS[unit]


def size_bytes(text: str) -> int:
    number, unit = _UNIT.fullmatch(text).groups()  # type: ignore[union-attr]
    return int(number) * _SIZE_UNITS[unit]


MAX_NUMBER_LENGTH = 40


def number(text: str) -> int | float:
    if len(text) > MAX_NUMBER_LENGTH:  # Python refuses huge int conversions; so do we, clearly
        raise ValueError(f"number longer than {MAX_NUMBER_LENGTH} characters")
    # a bound the engine would hold as another number than written is refused (numbers.py)
    return exact_float(text) if any(c in text for c in ".eE") else int(text)
