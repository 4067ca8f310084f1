"""How a body reaches validation: presence, media type, size before parsing, strict JSON."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from schema_support import Decide, route_policy

from policyengine import Engine, Reason, Request
from policyengine.engine import EngineOptions
from policyengine.inputs import MissingBody

POLICY = route_policy("schema S { a: int; ... }", "body S max 64B")
DEFAULT_MAX = route_policy("schema S { ... }", "body S")


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "Application/JSON",
        "application/json; charset=utf-8",
        "application/json;charset=UTF-8",
        'application/json; charset="utf-8"',
        "application/merge-patch+json",
        "application/vnd.api+json; ext=bulk",
    ],
)
def test_json_media_types_are_accepted(decide: Callable[[str], Decide], content_type: str) -> None:
    decision = decide(POLICY)(b'{"a": 1}', raw=True, headers={"content-type": content_type})
    assert decision.allow


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "text/json",
        "application/jsonp",
        "application/+json",
        "application/json-seq",
        "application/json; charset=utf-16",
        "application/json, text/plain",
        "",
    ],
)
def test_other_media_types_are_415(decide: Callable[[str], Decide], content_type: str) -> None:
    decision = decide(POLICY)(b'{"a": 1}', raw=True, headers={"Content-Type": content_type})
    assert (decision.status, decision.reason) == (415, Reason.INPUT_UNSUPPORTED)
    assert decision.reason.value == "input.unsupported_media_type"


def test_raw_body_needs_a_content_type(decide: Callable[[str], Decide]) -> None:
    decision = decide(POLICY)(b'{"a": 1}', raw=True, headers={})
    assert (decision.status, decision.message) == (415, "Content-Type must be application/json")


def test_a_parsed_body_may_come_without_content_type(
    decide: Callable[[str], Decide], tmp_path: object
) -> None:
    engine = Engine.from_text(POLICY)
    assert engine.decide(Request("POST", "/r", {}, {"a": 1})).allow
    wrong = engine.decide(Request("POST", "/r", {"Content-Type": "text/plain"}, {"a": 1}))
    assert wrong.status == 415
    invalid = engine.decide(Request("POST", "/r", {}, {"a": "1"}))
    assert (invalid.status, [e.pointer for e in invalid.errors]) == (400, ["/a"])


def test_max_applies_before_parsing(decide: Callable[[str], Decide]) -> None:
    run = decide(POLICY)
    fits = b'{"a": 1, "pad": "' + b"x" * (64 - 19) + b'"}'
    assert len(fits) == 64 and run(fits, raw=True).allow
    over = run(fits.replace(b'"x', b'"xx'), raw=True)
    assert (over.status, over.reason) == (413, Reason.INPUT_TOO_LARGE)
    # not JSON at all, but too large first: never parsed
    assert run(b"{" * 65, raw=True).status == 413


def test_max_counts_bytes_not_characters(decide: Callable[[str], Decide]) -> None:
    run = decide(POLICY)
    body = '{"a": 1, "p": "' + "é" * 24 + '"}'  # 41 characters, 65 bytes in UTF-8
    assert run(body, raw=True).status == 413
    assert run(body.replace("é", "e"), raw=True).allow


def test_max_applies_to_a_parsed_body_as_its_json(tmp_path: object) -> None:
    engine = Engine.from_text(POLICY)
    decision = engine.decide(Request("POST", "/r", {}, {"a": 1, "pad": "x" * 100}))
    assert decision.status == 413


def test_default_max_is_one_mebibyte(decide: Callable[[str], Decide]) -> None:
    run = decide(DEFAULT_MAX)
    pad = 1024 * 1024 - len(b'{"p": ""}')
    assert run(b'{"p": "' + b"x" * pad + b'"}', raw=True).allow
    assert run(b'{"p": "' + b"x" * (pad + 1) + b'"}', raw=True).status == 413


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b"", "the body is empty"),
        (b"   \n", "the body is empty"),
        (b"{", "invalid JSON: Expecting property name enclosed in double quotes"),
        (b'{"a": 1,}', "invalid JSON"),
        (b'{"a": 1} {}', "invalid JSON: Extra data"),
        (b'{"a": 1, "a": 2}', 'duplicate key "a"'),
        (b'{"a": NaN}', "`NaN` is not a JSON number"),
        (b'{"a": -Infinity}', "`-Infinity` is not a JSON number"),
        (b'{"a": 1e400}', "a number is out of range"),
        (b'{"a": ' + b"9" * 101 + b"}", "a number is longer than 100 characters"),
        (b'{"a": 1, "s": "\xff"}', "the body is not valid UTF-8"),
        (b'\xef\xbb\xbf{"a": 1}', "the body starts with a byte order mark"),
        (b'{"a": 1, "s": "\\ud800"}', "a string holds an unpaired UTF-16 surrogate"),
        (b'{"a": 1, "s": "tab\there"}', "invalid JSON: Invalid control character"),
    ],
)
def test_bodies_that_are_not_strict_json(tmp_path: object, body: bytes, detail: str) -> None:
    engine = Engine.from_text(route_policy("schema S { ... }"))
    decision = engine.decide(Request("POST", "/r", {"Content-Type": "application/json"}, body))
    assert (decision.status, decision.reason) == (400, Reason.INPUT_INVALID)
    assert decision.message == "the body is not valid JSON"
    assert decision.errors[0].pointer == ""
    assert decision.errors[0].message.startswith(detail)


def test_a_parsed_body_that_is_not_json_is_invalid(tmp_path: object) -> None:
    engine = Engine.from_text(route_policy("schema S { ... }"))
    for value in ({"when": object()}, {"x": float("nan")}, {1: {2}}):
        decision = engine.decide(Request("POST", "/r", {}, value))
        assert (decision.status, decision.reason) == (400, Reason.INPUT_INVALID)


def test_missing_body_is_denied_by_default(decide: Callable[[str], Decide]) -> None:
    decision = decide(POLICY)(None)
    assert (decision.allow, decision.status, decision.reason) == (False, 400, Reason.INPUT_INVALID)
    assert decision.message == "no request body reached the policy engine"


def test_missing_body_can_be_skipped_but_not_a_bad_one(decide: Callable[[str], Decide]) -> None:
    run = decide(POLICY, options=EngineOptions(on_missing_body=MissingBody.SKIP))
    assert run(None).allow
    assert run(b"", raw=True).status == 400  # an empty body did arrive: it is checked
    assert run({"a": "x"}).status == 400


def test_skip_does_not_skip_authorization_or_the_query(decide: Callable[[str], Decide]) -> None:
    policy = route_policy("schema S { ... }", "body S\n    query { q: int }") + (
        "route POST /closed { allow when false; body S }\n"
    )
    run = decide(policy, options=EngineOptions(on_missing_body=MissingBody.SKIP))
    assert run(None, path="/r?q=1").allow
    assert run(None, path="/r?q=x").status == 400
    assert run(None, path="/closed").reason == Reason.AUTHN_MISSING  # anonymous, no allow


def test_routes_without_body_ignore_the_body(decide: Callable[[str], Decide]) -> None:
    run = decide("route POST /r { allow anyone }")
    assert run(b"{not json", raw=True, headers={"Content-Type": "text/plain"}).allow
