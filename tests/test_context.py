"""The request context: header lookups agree whichever way the headers arrive."""

from __future__ import annotations

import pytest

from policyengine.context import RequestContext, lower_headers
from policyengine.request import LowercaseHeaders, Request

CASES = [
    ({"X-Key": "a"}, "x-key", "a"),
    ({"x-KEY": " a \t"}, "x-key", "a"),  # optional whitespace is not part of the value
    ({"X-Key": "a", "x-key": "b"}, "x-key", "a, b"),  # one field, never a silent winner
    ({"X-Other": "a"}, "x-key", None),
    ({"X-Keys": "a", "X-Ke": "b"}, "x-key", None),  # names of other lengths
    ({}, "x-key", None),
]


@pytest.mark.parametrize(("headers", "name", "expected"), CASES)
def test_header_lookup_matches_folding_every_name(
    headers: dict[str, str], name: str, expected: str | None
) -> None:
    direct = RequestContext(Request("GET", "/", headers), (), "", 0.0)
    folded = RequestContext(
        Request("GET", "/", LowercaseHeaders(lower_headers(headers))), (), "", 0.0
    )
    assert direct.header(name) == expected
    assert direct.header(name) == expected  # the second lookup is remembered
    assert folded.header(name) == expected
    assert direct.headers.get(name, "").strip() == (expected or "")


def test_request_headers_as_wire_pairs_join_like_the_sidecar() -> None:
    from policyengine.server.message import combine

    pairs = [("Authorization", "Bearer a"), ("authorization", "Bearer b"), ("Cookie", "x"),
             ("cookie", "y")]  # fmt: skip
    expected = combine([(n.encode(), v.encode()) for n, v in pairs])
    assert dict(Request("GET", "/", pairs).headers) == dict(expected)
    assert dict(expected) == {"authorization": "Bearer a, Bearer b", "cookie": "x; y"}


def test_request_headers_of_another_shape_fail_at_construction() -> None:

    for bad in ("a: b", 5, [("a",)], {"a": 1}, [(1, "x")], [("a", None)]):
        with pytest.raises(TypeError):
            Request("GET", "/", bad)  # type: ignore[arg-type]
