"""numbers.exact_float: a literal is read as a float only when the float is that number."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from policyengine.numbers import InexactNumber, OutOfRange, exact_float


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("19.99", 19.99),
        ("0.1", 0.1),
        ("-0.0", -0.0),
        ("1e2", 100.0),
        ("1.000E+2", 100.0),
        ("123456789012345", 123456789012345.0),
        ("100.000000000000000000", 100.0),
        ("0.30000000000000004", 0.30000000000000004),
        ("1.7976931348623157e308", 1.7976931348623157e308),
        ("5e-324", 5e-324),
    ],
)
def test_numbers_a_double_holds_are_read(text: str, value: float) -> None:
    assert exact_float(text) == value


@pytest.mark.parametrize(
    "text",
    [
        "100.0000000000000000001",
        "3.14159265358979323846",
        "9007199254740993.0",
        "0.1000000000000000055511151231257827",  # the double of 0.1 written out: not its repr
        "1e-400",
        "1.00000000000000000000000000001e2",
    ],
)
def test_numbers_a_double_would_change_are_refused(text: str) -> None:
    with pytest.raises(InexactNumber):
        exact_float(text)


@pytest.mark.parametrize("text", ["1e400", "-1e309"])
def test_numbers_past_the_double_range_are_out_of_range(text: str) -> None:
    with pytest.raises(OutOfRange):
        exact_float(text)


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_every_double_written_shortest_is_read_back(value: float) -> None:
    assert exact_float(repr(value)) == value


@given(
    st.decimals(allow_nan=False, allow_infinity=False, places=None).filter(
        lambda d: abs(d) < Decimal("1e300")
    )
)
def test_an_accepted_literal_is_the_number_the_double_holds(number: Decimal) -> None:
    text = str(number).replace("E", "e")
    try:
        value = exact_float(text)
    except InexactNumber:
        return
    # the same number to a decimal reader and to the engine: no differential
    assert Decimal(repr(value)) == Decimal(text)
