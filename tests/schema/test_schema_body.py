"""Bodies against inline schemas, feature by feature, through Engine.decide."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from schema_support import Decide, pointers, rendered, route_policy

from policyengine import Reason

VALID: None = None  # expected pointers of a valid body: none, and the request is allowed

# (feature, schema S and what it references, body, pointers of the expected violations)
CASES: list[tuple[str, str, Any, list[str] | None]] = [
    ("string", "schema S { s: string }", {"s": "x"}, VALID),
    ("string: not a number", "schema S { s: string }", {"s": 5}, ["/s"]),
    ("string: not null", "schema S { s: string }", {"s": None}, ["/s"]),
    ("len: within", "schema S { s: string len 2..3 }", {"s": "abc"}, VALID),
    ("len: short", "schema S { s: string len 2..3 }", {"s": "a"}, ["/s"]),
    ("len: long", "schema S { s: string len 2..3 }", {"s": "abcd"}, ["/s"]),
    ("len: counts characters", "schema S { s: string len ..2 }", {"s": "ßé"}, VALID),
    ("len: open high", "schema S { s: string len 2.. }", {"s": "x" * 500}, VALID),
    ("matching", 'schema S { s: string matching "^[A-Z]{3}$" }', {"s": "ABC"}, VALID),
    ("matching: no", 'schema S { s: string matching "^[A-Z]{3}$" }', {"s": "ABCD"}, ["/s"]),
    (
        "matching: $ is the end",
        'schema S { s: string matching "^[A-Z]{3}$" }',
        {"s": "ABC\n"},
        ["/s"],
    ),
    (
        "matching: unanchored searches",
        'schema S { s: string matching "[0-9]" }',
        {"s": "ab7"},
        VALID,
    ),
    ("matching: \\d is ASCII", 'schema S { s: string matching "^\\d+$" }', {"s": "١٢"}, ["/s"]),
    ("email", "schema S { e: string format email }", {"e": "ann@example.test"}, VALID),
    ("email: no", "schema S { e: string format email }", {"e": "ann"}, ["/e"]),
    (
        "uuid",
        "schema S { u: string format uuid }",
        {"u": "123e4567-e89b-12d3-a456-426614174000"},
        VALID,
    ),
    ("uuid: no", "schema S { u: string format uuid }", {"u": "123e4567"}, ["/u"]),
    ("date-time", "schema S { t: string format date-time }", {"t": "2026-05-01T10:00:00Z"}, VALID),
    (
        "date-time: a date is not",
        "schema S { t: string format date-time }",
        {"t": "2026-05-01"},
        ["/t"],
    ),
    ("uri", "schema S { u: string format uri }", {"u": "https://example.test/a?b"}, VALID),
    ("uri: relative is not", "schema S { u: string format uri }", {"u": "/a/b"}, ["/u"]),
    ("int", "schema S { n: int }", {"n": -7}, VALID),
    ("int: 2.0 is an integer (JSON Schema)", "schema S { n: int }", {"n": 2.0}, VALID),
    ("int: 2.5", "schema S { n: int }", {"n": 2.5}, ["/n"]),
    ("int: a bool is not", "schema S { n: int }", {"n": True}, ["/n"]),
    ("int: a string is not", "schema S { n: int }", {"n": "1"}, ["/n"]),
    ("int range: low end", "schema S { n: int 1..100 }", {"n": 1}, VALID),
    ("int range: high end", "schema S { n: int 1..100 }", {"n": 100}, VALID),
    ("int range: below", "schema S { n: int 1..100 }", {"n": 0}, ["/n"]),
    ("int range: above", "schema S { n: int 1..100 }", {"n": 101}, ["/n"]),
    ("int range: big", "schema S { n: int ..100 }", {"n": 10**40}, ["/n"]),
    ("number", "schema S { x: number -1.5..1.5 }", {"x": 1.5}, VALID),
    ("number: int is a number", "schema S { x: number }", {"x": 3}, VALID),
    ("number: above", "schema S { x: number -1.5..1.5 }", {"x": 1.51}, ["/x"]),
    ("number: below", "schema S { x: number -1.5..1.5 }", {"x": -2}, ["/x"]),
    ("bool", "schema S { b: bool }", {"b": False}, VALID),
    ("bool: 0 is not", "schema S { b: bool }", {"b": 0}, ["/b"]),
    ("bool: a string is not", "schema S { b: bool }", {"b": "true"}, ["/b"]),
    ("array", "schema S { a: [int] }", {"a": [1, 2]}, VALID),
    ("array: empty", "schema S { a: [int] }", {"a": []}, VALID),
    ("array: an item", "schema S { a: [int] }", {"a": [1, "x", 3]}, ["/a/1"]),
    ("array: not an array", "schema S { a: [int] }", {"a": {"0": 1}}, ["/a"]),
    ("array len: short", "schema S { a: [int] len 1..2 }", {"a": []}, ["/a"]),
    ("array len: long", "schema S { a: [int] len 1..2 }", {"a": [1, 2, 3]}, ["/a"]),
    (
        "array of strings with len",
        "schema S { a: [string len 1..] len ..3 }",
        {"a": ["x", ""]},
        ["/a/1"],
    ),
    ("enum", 'schema S { k: "retail" | "wholesale" }', {"k": "wholesale"}, VALID),
    ("enum: other", 'schema S { k: "retail" | "wholesale" }', {"k": "Retail"}, ["/k"]),
    ("enum: not a string", 'schema S { k: "1" | "2" }', {"k": 1}, ["/k"]),
    ("nested", "schema P { x: int }\nschema S { p: P }", {"p": {"x": 1}}, VALID),
    (
        "nested: inner violation",
        "schema P { x: int }\nschema S { p: P }",
        {"p": {"x": "1"}},
        ["/p/x"],
    ),
    (
        "nested: closed too",
        "schema P { x: int }\nschema S { p: P }",
        {"p": {"x": 1, "y": 2}},
        ["/p/y"],
    ),
    (
        "nested in arrays",
        "schema P { x: int 0..9 }\nschema S { ps: [P] }",
        {"ps": [{"x": 1}, {"x": 10}]},
        ["/ps/1/x"],
    ),
    (
        "three deep",
        "schema A { b: B }\nschema B { c: C }\nschema C { n: int }\nschema S { a: A }",
        {"a": {"b": {"c": {"n": "x"}}}},
        ["/a/b/c/n"],
    ),
    (
        "recursive, optional",
        "schema S { v: int; next?: S }",
        {"v": 1, "next": {"v": 2, "next": {"v": 3}}},
        VALID,
    ),
    (
        "recursive, deep violation",
        "schema S { v: int; next?: S }",
        {"v": 1, "next": {"v": 2, "next": {"v": "3"}}},
        ["/next/next/v"],
    ),
    ("optional: absent", "schema S { a: int; b?: int }", {"a": 1}, VALID),
    ("optional: present and wrong", "schema S { a: int; b?: int }", {"a": 1, "b": "x"}, ["/b"]),
    ("optional: null is not absent", "schema S { a: int; b?: int }", {"a": 1, "b": None}, ["/b"]),
    ("required: missing", "schema S { a: int; b: int }", {"a": 1}, ["/b"]),
    ("closed: unknown field", "schema S { a: int }", {"a": 1, "z": 0}, ["/z"]),
    ("closed: every unknown field", "schema S { a: int }", {"a": 1, "y": 0, "z": 0}, ["/y", "/z"]),
    ("open: unknown fields allowed", "schema S { a: int; ... }", {"a": 1, "z": {"any": []}}, VALID),
    ("open: known fields still checked", "schema S { a: int; ... }", {"a": "1", "z": 0}, ["/a"]),
    ("empty schema: {}", "schema S { }", {}, VALID),
    ("empty schema is closed", "schema S { }", {"a": 1}, ["/a"]),
    ("body must be an object", "schema S { a?: int }", [1], [""]),
    ("pointer escapes / and ~", "schema S { a: int }", {"a": 1, "x/y~z": 1}, ["/x~1y~0z"]),
]


@pytest.mark.parametrize(
    ("schemas", "body", "expected"), [pytest.param(s, b, e, id=name) for name, s, b, e in CASES]
)
def test_body_against_inline_schema(
    decide: Callable[[str], Decide], schemas: str, body: Any, expected: list[str] | None
) -> None:
    decision = decide(route_policy(schemas))(body)
    if expected is None:
        assert (decision.allow, decision.reason, decision.errors) == (True, Reason.ALLOW, ())
    else:
        assert (decision.status, decision.reason) == (400, Reason.INPUT_INVALID)
        assert sorted(pointers(decision)) == sorted(expected)
        assert decision.message == "the body does not match schema `S`"


RETAIL = """
schema Order {
    productId: string matching "^[A-Z0-9]{8}$"
    quantity:  int 1..100
    note?:     string len ..200
}
schema Stop { lat: number -90..90; lon: number -180..180 }
schema Trip { stops: [Stop] len 1.. }
route POST /orders { allow anyone; body Order max 16KiB }
route POST /trips { allow anyone; body Trip }
"""


def test_messages_say_what_is_wrong_where(decide: Callable[[str], Decide]) -> None:
    run = decide(RETAIL)
    trip = run({"stops": [{"lat": 91, "lon": 0}]}, path="/trips")
    assert rendered(trip) == ["/stops/0/lat: 91 is greater than the maximum of 90"]
    order = run({"productId": "abc", "quantity": 0, "note": 7, "coupon": "X"}, path="/orders")
    assert sorted(rendered(order)) == [
        "/coupon: unknown field",
        "/note: 7 is not a string",
        '/productId: "abc" does not match `^[A-Z0-9]{8}$`',
        "/quantity: 0 is less than the minimum of 1",
    ]
    missing = run({}, path="/orders")
    assert sorted(rendered(missing)) == [
        "/productId: required field is missing",
        "/quantity: required field is missing",
    ]


@pytest.mark.parametrize(
    ("schema", "body", "message"),
    [
        ("s: string len ..3", {"s": "abcd"}, '"abcd" is longer than 3 characters'),
        ("s: string len 2..", {"s": "a"}, '"a" is shorter than 2 characters'),
        ("a: [int] len ..1", {"a": [1, 2]}, "the array has more than 1 item"),
        ("a: [int] len 2..", {"a": [1]}, "the array has fewer than 2 items"),
        ("e: string format email", {"e": "x"}, '"x" is not a valid email'),
        ('k: "a" | "b"', {"k": "c"}, '"c" is not one of "a", "b"'),
        ("n: int", {"n": [1]}, "the array is not an integer"),
        ("n: number", {"n": {}}, "the object is not a number"),
        ("s: string", {"s": "x" * 1000}, None),  # valid: nothing to say
        (
            "s: string len ..3",
            {"s": "y" * 100_000},
            '"' + "y" * 39 + '…" is longer than 3 characters',
        ),
    ],
)
def test_messages_are_short_and_readable(
    decide: Callable[[str], Decide], schema: str, body: Any, message: str | None
) -> None:
    decision = decide(route_policy(f"schema S {{ {schema} }}"))(body)
    assert [e.message for e in decision.errors] == ([message] if message else [])


def test_violations_are_bounded_in_count(decide: Callable[[str], Decide]) -> None:
    run = decide(route_policy("schema S { a: [int 0..0] }"))
    decision = run({"a": list(range(1, 500))})
    assert decision.status == 400
    assert pointers(decision) == [f"/a/{i}" for i in range(20)]
    assert "at most 20 violations" in decision.message


def test_a_huge_invalid_body_reports_its_first_violation(decide: Callable[[str], Decide]) -> None:
    run = decide(route_policy("schema S { a: [int 0..0] }"))
    decision = run({"a": [0] * 50_000 + [1] * 50_000})
    assert (decision.status, pointers(decision)) == (400, ["/a/50000"])


SCHEMA_FILE_JSON = """{
  "type": "object",
  "properties": {"point": {"$ref": "#/$defs/Point"}, "tags": {"type": "array"}},
  "required": ["point"],
  "$defs": {"Point": {"type": "object", "properties": {"x": {"type": "integer", "maximum": 9}},
                      "required": ["x"]}}
}"""
SCHEMA_FILE_YAML = """
type: object
properties:
  point: {$ref: "#/definitions/Point"}
required: [point]
definitions:
  Point:
    type: object
    properties: {x: {type: integer, maximum: 9}}
    required: [x]
"""


@pytest.mark.parametrize(
    ("file_name", "text"), [("s.json", SCHEMA_FILE_JSON), ("schemas/s.yaml", SCHEMA_FILE_YAML)]
)
def test_schema_files_with_refs_inside(
    decide: Callable[[str], Decide], tmp_path: Any, file_name: str, text: str
) -> None:
    path = tmp_path / file_name
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    run = decide(route_policy(f'schema S file "{file_name}"'))
    assert run({"point": {"x": 9}}).allow
    assert pointers(run({"point": {"x": 10}})) == ["/point/x"]
    assert pointers(run({"point": {}})) == ["/point/x"]
    # a file is open unless it says otherwise
    assert run({"point": {"x": 1}, "more": True}).allow


def test_a_schema_file_inside_an_inline_schema_keeps_its_own_refs(
    decide: Callable[[str], Decide], tmp_path: Any
) -> None:
    (tmp_path / "p.json").write_text(SCHEMA_FILE_JSON)
    run = decide(route_policy('schema F file "p.json"\nschema S { items: [F] len 1.. }'))
    assert run({"items": [{"point": {"x": 3}}]}).allow
    assert pointers(run({"items": [{"point": {"x": 3}}, {"point": {"x": 30}}]})) == [
        "/items/1/point/x"
    ]


def test_a_draft_07_file_is_validated_by_its_own_draft(
    decide: Callable[[str], Decide], tmp_path: Any
) -> None:
    (tmp_path / "d7.json").write_text(
        '{"$schema": "http://json-schema.org/draft-07/schema#", "type": "object",'
        ' "properties": {"n": {"type": "integer", "exclusiveMaximum": 5}}}'
    )
    run = decide(route_policy('schema S file "d7.json"'))
    assert run({"n": 4}).allow
    assert pointers(run({"n": 5})) == ["/n"]


def test_formats_are_asserted_in_schema_files_too(
    decide: Callable[[str], Decide], tmp_path: Any
) -> None:
    (tmp_path / "f.json").write_text('{"properties": {"e": {"format": "email"}}}')
    run = decide(route_policy('schema S file "f.json"'))
    assert pointers(run({"e": "not-an-email"})) == ["/e"]


def test_a_catastrophic_pattern_cannot_hang_a_decision(decide: Callable[[str], Decide]) -> None:
    # Python's `re` needs ~2**40 steps here; the linear-time engine needs microseconds
    run = decide(route_policy('schema S { s: string matching "^(a+)+$" }'))
    decision = run({"s": "a" * 40 + "!"})
    assert pointers(decision) == ["/s"]
    assert run({"s": "a" * 100_000}).allow
