"""Numbers as written: a decimal literal is read as a float only when nothing is lost.

`{"quantity": 100.0000000000000000001}` is 100.0 to a reader of doubles and more than
100 to one of decimals (Java's BigDecimal, Python's Decimal, most databases). If the
engine checked `int 1..100` on the double while the application stored the decimal,
the two would disagree on one request. So a literal whose double does not read back as
the same number (the shortest repr of the double, compared as a decimal) is refused,
in bodies, query parameters and the policy itself: I-JSON (RFC 7493 §2.2) asks for
no more precision than a double holds.

Ordinary numbers stay on the fast path: a literal of at most 16 characters without an
exponent has at most 15 significant digits, and those always survive (DBL_DIG is 15).
Longer ones are compared with the double's shortest repr, which is usually the text
itself (what JSON.stringify writes); only the rest build two Decimals (bench/
json_numbers.py). Integers are Python ints, exact at any length, not touched here.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any, TypeGuard

MAX_CHARS = 100  # longer literals are refused before conversion (CVE-2020-10735 for ints)
# At most 16 characters with a `.` and no exponent: at most 15 significant digits, and
# any decimal of at most 15 significant digits survives a double (DBL_DIG)
FAST_CHARS = 16


def is_number(value: Any) -> TypeGuard[int | float]:
    """A JSON number: an int or a float, never a bool (`true` is not `1`)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


class NumberError(ValueError):
    """A literal that is not read as a float; the message is safe to show the client."""


class InexactNumber(NumberError):
    """A decimal literal that a double cannot hold as written."""

    def __init__(self) -> None:
        super().__init__("a number has more precision than a 64-bit float holds")


class OutOfRange(NumberError):
    def __init__(self) -> None:
        super().__init__("a number is out of range")


class TooLong(NumberError):
    def __init__(self) -> None:
        super().__init__(f"a number is longer than {MAX_CHARS} characters")


def exact_float(text: str) -> float:
    """The double of a decimal literal (JSON number syntax, with a fraction or exponent)
    that survives the round trip; raises a NumberError (InexactNumber, OutOfRange,
    TooLong). Written out in one function: it runs once per number of every body."""
    if len(text) <= FAST_CHARS and "e" not in text and "E" not in text:
        return float(text)
    if len(text) > MAX_CHARS:
        raise TooLong()
    value = float(text)
    if repr(value) == text:  # the double's shortest form, as JSON.stringify writes it
        return value
    if not math.isfinite(value):
        raise OutOfRange()
    # the same number in other digits (trailing zeros, an exponent) passes; more digits
    # than the double holds, or an underflow to 0, do not
    if Decimal(text) != Decimal(repr(value)):
        raise InexactNumber()
    return value
