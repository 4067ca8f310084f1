"""The request context: header lookups agree whichever way the headers arrive."""

from __future__ import annotations

import pytest

from policyengine.context import LowercaseHeaders, RequestContext, lower_headers
from policyengine.decision import Request

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
