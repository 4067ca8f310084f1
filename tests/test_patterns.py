"""Typed path parameters: what a request segment must look like to fit `int` or `uuid`."""

from __future__ import annotations

import pytest

from policyengine.patterns import ParamType


@pytest.mark.parametrize(
    ("segment", "value"),
    [
        ("0", 0),
        ("123456", 123456),
        ("007", 7),
        ("-5", -5),
        ("-0", 0),
        ("9" * 18, int("9" * 18)),
        ("-" + "9" * 18, -int("9" * 18)),
        ("9" * 19, None),  # beyond 18 digits: not an id any backend stores as an integer
        ("-", None),
        ("--1", None),
        ("+1", None),
        (" 1", None),
        ("1_000", None),
        ("١٢", None),  # Unicode digits int() would read
        ("²", None),
        ("12a", None),
    ],
)
def test_int_segments(segment: str, value: int | None) -> None:
    assert ParamType.INT.convert(segment) == value


@pytest.mark.parametrize(
    ("segment", "value"),
    [
        ("123e4567-e89b-12d3-a456-426614174000", "123e4567-e89b-12d3-a456-426614174000"),
        ("123E4567-E89B-12D3-A456-426614174000", "123e4567-e89b-12d3-a456-426614174000"),
        ("123e4567e89b12d3a456426614174000", None),
        ("123e4567-e89b-12d3-a456-42661417400", None),
    ],
)
def test_uuid_segments(segment: str, value: str | None) -> None:
    assert ParamType.UUID.convert(segment) == value
