"""`query { ... }`: URL parameters coerced by field type, repeated ones as lists, validated."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from schema_support import Decide, pointers, rendered, route_policy

from policyengine import Engine, Reason, Request

QUERY = route_policy(
    "",
    "query { limit?: int 1..100; price?: number 0..; flag?: bool; q?: string len ..5;"
    ' kind?: "a" | "b"; ids?: [int] len ..3; tags?: [string] }',
)

VALID: None = None

CASES: list[tuple[str, list[str] | None]] = [
    ("", VALID),
    ("limit=10", VALID),
    ("limit=-1", ["/limit"]),
    ("limit=101", ["/limit"]),
    ("limit=abc", ["/limit"]),
    ("limit=1.5", ["/limit"]),
    ("limit=", ["/limit"]),
    ("limit=%2010", ["/limit"]),  # " 10": no spaces around numbers
    ("limit=" + "9" * 101, ["/limit"]),
    ("price=0", VALID),
    ("price=2.50", VALID),
    ("price=1e3", VALID),
    ("price=-0.5", ["/price"]),
    ("price=nan", ["/price"]),
    ("price=inf", ["/price"]),
    ("price=1e99999", ["/price"]),
    ("price=19.99", VALID),
    ("price=100.000000000000000000", VALID),  # long, but exactly the number a double holds
    ("price=100.0000000000000000001", ["/price"]),  # a double would read 100.0
    ("price=1e-400", ["/price"]),  # a double would read 0.0
    ("limit=100.0000000000000000001", ["/limit"]),
    ("ids=1&ids=2&tags=x&price=3.14159265358979323846", ["/price"]),
    ("flag=true", VALID),
    ("flag=false", VALID),
    ("flag=1", ["/flag"]),
    ("flag=True", ["/flag"]),
    ("flag", ["/flag"]),  # a blank value is "", not true
    ("q=", VALID),
    ("q=hello", VALID),
    ("q=toolong", ["/q"]),
    ("q=12", VALID),  # a string field keeps digits as a string
    ("q=a+b", VALID),
    ("kind=a", VALID),
    ("kind=c", ["/kind"]),
    ("ids=1", VALID),
    ("ids=1&ids=2&ids=3", VALID),
    ("ids=1&ids=x", ["/ids/1"]),
    ("ids=1&ids=2&ids=3&ids=4", ["/ids"]),
    ("tags=x&tags=y", VALID),
    ("limit=1&limit=2", ["/limit"]),
    ("q=a&q=a", ["/q"]),
    ("other=1", ["/other"]),
    ("other=1&other=2", ["/other"]),
    ("limit=5&Limit=5", ["/Limit"]),  # names are case-sensitive
    ("limit=0&flag=yes&kind=z", ["/flag", "/kind", "/limit"]),
]


@pytest.mark.parametrize(("query", "expected"), CASES)
def test_query_parameters(
    decide: Callable[[str], Decide], query: str, expected: list[str] | None
) -> None:
    decision = decide(QUERY)({}, path=f"/r?{query}" if query else "/r")
    if expected is None:
        assert decision.allow, decision.errors
    else:
        assert (decision.status, decision.reason) == (400, Reason.INPUT_INVALID)
        assert decision.message == "query parameters are invalid"
        assert sorted(pointers(decision)) == expected


def test_query_messages(decide: Callable[[str], Decide]) -> None:
    run = decide(QUERY)
    assert rendered(run({}, path="/r?limit=abc&flag=1&flag=0")) == [
        "/flag: given 2 times; takes one value",
        '/limit: "abc" is not an integer',
        '/flag: "1" is not a boolean',
    ]


def test_numbers_a_double_cannot_hold_are_named(decide: Callable[[str], Decide]) -> None:
    run = decide(QUERY)
    assert rendered(run({}, path="/r?price=100.0000000000000000001")) == [
        "/price: a number has more precision than a 64-bit float holds"
    ]
    assert rendered(run({}, path="/r?price=1e999")) == ["/price: a number is out of range"]


def test_required_and_open_query(decide: Callable[[str], Decide]) -> None:
    run = decide(route_policy("", "query { page: int; ... }"))
    assert rendered(run({}, path="/r?x=1")) == ["/page: required field is missing"]
    assert run({}, path="/r?page=2&x=1&x=2&utm_source=mail").allow


def test_query_is_checked_before_the_body(decide: Callable[[str], Decide]) -> None:
    run = decide(route_policy("schema S { a: int }", "body S\n    query { p: int }"))
    decision = run({"a": "bad"}, path="/r?p=x")
    assert (decision.message, pointers(decision)) == ("query parameters are invalid", ["/p"])
    assert pointers(run({"a": "bad"}, path="/r?p=1")) == ["/a"]


def test_conditions_see_the_raw_string() -> None:
    # authorization (step 4) runs before input validation (step 6): `query.NAME` is the
    # parameter as sent, a string, even when the query schema types it
    policy = route_policy("", 'query { n: int }\n    deny when query.n == "7"')
    engine = Engine.from_text(policy)

    def run(target: str) -> Reason:
        return engine.decide(Request("POST", target, {}, None)).reason

    assert run("/r?n=7") == Reason.DENIED
    assert run("/r?n=07") == Reason.ALLOW  # "07" is not "7", yet a valid int
    assert run("/r?n=x") == Reason.INPUT_INVALID
