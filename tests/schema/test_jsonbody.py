"""Strict JSON parsing of bodies: hostile inputs get a clear InvalidJson, never a crash."""

from __future__ import annotations

import json

import pytest

from policyengine.jsonbody import MAX_DEPTH, InvalidJson, parse_json

MIB = 1024 * 1024


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"[" * MIB, f"nesting deeper than {MAX_DEPTH} levels"),
        (b'{"a":' * (MIB // 5), f"nesting deeper than {MAX_DEPTH} levels"),
        (b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1), f"nesting deeper than {MAX_DEPTH}"),
        (b'[{"a": ' * 40 + b"1" + b"}]" * 40, f"nesting deeper than {MAX_DEPTH}"),
        (b"9" * 100_000, "a number is longer than 100 characters"),
        (b"[0." + b"1" * 100_000 + b"]", "a number is longer than 100 characters"),
        (b"-" + b"9" * 4301, "a number is longer than 100 characters"),
        (b"1e999999999", "a number is out of range"),
        # more precise than a double: a decimal reader would see another number (I-JSON)
        (b'{"quantity": 100.0000000000000000001}', "a number has more precision than"),
        (b"[1e-400]", "a number has more precision than"),  # 0.0 to a double
        (b"[3.14159265358979323846]", "a number has more precision than"),
        (b"[9007199254740993.0]", "a number has more precision than"),
        (b"[1.00000000000000000000000000001e2]", "a number has more precision than"),
        (b'"' + b"x" * MIB + b"\\ud800" + b'"', "a string holds an unpaired UTF-16 surrogate"),
        (b'{"\\uDC00": 1}', "a string holds an unpaired UTF-16 surrogate"),
        (b'{"k": 1, "k": 1}', 'duplicate key "k"'),
        (b'[{"a": {"b": 1, "b": 2}}]', 'duplicate key "b"'),
        (b"[Infinity]", "`Infinity` is not a JSON number"),
        (b"\xc3\x28", "the body is not valid UTF-8"),
        (b"\xed\xa0\x80", "the body is not valid UTF-8"),  # a surrogate encoded in UTF-8
    ],
)
def test_hostile_bodies(body: bytes, message: str) -> None:
    with pytest.raises(InvalidJson) as caught:
        parse_json(body)
    assert str(caught.value).startswith(message)


@pytest.mark.parametrize(
    "text",
    [
        "[" * MAX_DEPTH + "]" * MAX_DEPTH,
        '"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["',
        '{"emoji": "\\ud83d\\ude00", "é": "\\u00e9"}',
        "-0",
        "9" * 100,
        "[19.99, 0.1, 1e2, 1.5e-300, 123456789012345, 100.000000000000000000000]",
        "[1.7976931348623157e308, 5e-324, 0.30000000000000004, -0.0]",
        '{"a": [1, 2.5, true, false, null, "s", {}, []]}',
    ],
)
def test_strict_json_that_is_accepted(text: str) -> None:
    assert parse_json(text.encode()) == json.loads(text)
    assert parse_json(text) == json.loads(text)
