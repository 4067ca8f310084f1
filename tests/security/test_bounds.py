"""Resource bounds: where the input decides the cost, the cost is bounded.

Hangs are found with a watchdog (`finishes`), never with a timed assertion: a bound of
many seconds that only a runaway computation can exceed.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from typing import Any

import pytest
from security_support import send

from policyengine import Engine, PolicyError, Request
from policyengine.regex import RegexError, compile_regex
from policyengine.request import Identity

# seconds: a hang detector, generous for a loaded machine; Python's `re` needs minutes to
# hours on the inputs below
WATCHDOG = 60.0


def finishes(work: Callable[[], Any]) -> Any:
    """The result of `work`, or a failure if it is still running after WATCHDOG seconds."""
    outcome: list[tuple[bool, Any]] = []

    def run() -> None:
        try:
            outcome.append((True, work()))
        except BaseException as err:  # handed to the test's thread, which reports it
            outcome.append((False, err))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(WATCHDOG)
    assert not thread.is_alive(), "still running: unbounded work on adversarial input"
    finished, value = outcome[0]
    if not finished:
        raise value
    return value


# -- regular expressions ---------------------------------------------------------------------

EVIL = [
    ("^(a+)+$", "a" * 50_000 + "!"),  # exponential in a backtracking engine
    ("^(a|a)*$", "a" * 50_000 + "!"),
    ("^(a|aa)+$", "a" * 50_000 + "!"),
    (r"\s+$", " " * 500_000 + "x"),  # quadratic: 1.5 s for 20 KB in Python's re
    (r"^(\w+\s?)*$", "word " * 100_000 + "!"),
    ("(.*a){12}", "a" * 5_000),
]


@pytest.mark.parametrize(("pattern", "text"), EVIL, ids=[p for p, _ in EVIL])
def test_catastrophic_patterns_match_in_linear_time(pattern: str, text: str) -> None:
    regex = compile_regex(pattern)
    finishes(lambda: regex.search(text))


@pytest.mark.parametrize(("pattern", "text"), EVIL[:3], ids=[p for p, _ in EVIL[:3]])
def test_a_condition_with_a_catastrophic_pattern_decides(pattern: str, text: str) -> None:
    engine = Engine.from_text(f'route GET /x {{ allow when header["X-Name"] matches "{pattern}" }}')
    decision = finishes(lambda: engine.decide(Request("GET", "/x", {"X-Name": text})))
    assert decision.status == 401  # anonymous, and the pattern does not match


def test_a_schema_with_a_catastrophic_pattern_validates() -> None:
    engine = Engine.from_text("""
        schema S { name: string matching "^(a+)+$" }
        route POST /x { allow anyone; body S }
    """)
    body = ('{"name": "' + "a" * 100_000 + '!"}').encode()
    request = Request("POST", "/x", {"Content-Type": "application/json"}, body)
    assert finishes(lambda: engine.decide(request)).status == 400


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("(?=a)b", "not supported"),  # look-ahead
        ("(?<!a)b", "not supported"),  # look-behind
        (r"(a)\1", "not supported"),  # backreference
        ("(unclosed", "missing ), unterminated subpattern"),
    ],
)
def test_patterns_that_need_backtracking_are_refused(pattern: str, message: str) -> None:
    with pytest.raises(RegexError, match=message.replace("(", r"\(").replace(")", r"\)")):
        compile_regex(pattern)
    with pytest.raises(PolicyError) as err:
        Engine.from_text(f'route GET /x {{ allow when subject matches "{pattern}" }}')
    assert err.value.codes == ["compile/bad-regex"]


@pytest.mark.parametrize(
    ("pattern", "text", "found"),
    [
        ("^curl/[0-9]+", "curl/8.5", True),
        ("b", "abc", True),  # `matches` searches
        ("^admin$", "admin\n", False),  # `$` is the very end (Python's re says True)
        (r"^\d+$", "١٢٣", False),  # `\d` is ASCII (Python's re says True)
        ("(?i)^abc$", "ABC", True),
    ],
)
def test_matches_semantics(pattern: str, text: str, found: bool) -> None:
    assert compile_regex(pattern).search(text) is found


# -- requests ---------------------------------------------------------------------------------


def test_a_path_of_many_segments_is_decided(engine: Engine) -> None:
    path = "/api/admin" + "/x" * 200_000
    decision = finishes(lambda: engine.decide(Request("GET", path)))
    assert (decision.status, decision.reason.value) == (400, "request.bad_path")


def test_a_path_of_many_dot_segments_is_decided(engine: Engine) -> None:
    path = "/api/admin/users" + "/a/.." * 100_000
    assert finishes(lambda: engine.decide(Request("GET", path))).status == 401


def test_a_query_of_many_parameters_is_decided() -> None:
    engine = Engine.from_text('route GET /x { allow when query.q == "1" }')
    query = "&".join(f"p{i}=1" for i in range(200_000)) + "&q=1"
    assert finishes(lambda: engine.decide(Request("GET", f"/x?{query}"))).allow


def test_many_headers_are_decided() -> None:
    engine = Engine.from_text('route GET /x { allow when header["X-Last"] == "1" }')
    headers = {f"X-H{i}": "v" for i in range(100_000)} | {"X-Last": "1"}
    assert finishes(lambda: engine.decide(Request("GET", "/x", headers))).allow


def test_a_deep_body_read_by_a_condition_is_null() -> None:
    engine = Engine.from_text("route POST /x { allow when body.a == 1 }")
    body = b'{"a": 1, "b": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    identity = Identity("u")
    decision = finishes(lambda: engine.decide(Request("POST", "/x", {}, body, identity=identity)))
    assert not decision.allow


# -- the sidecar's limits (32 KiB of head, 100 fields, 1 MiB of body) -----------------------------


def test_too_many_header_fields_are_refused(server_port: int) -> None:
    fields = tuple((f"X-H{i}", "v") for i in range(150))
    assert send(server_port, "GET", "/healthz", fields).status == 431


def test_too_large_a_head_is_refused(server_port: int) -> None:
    fields = (("X-Big", "v" * 40_000),)
    assert send(server_port, "GET", "/healthz", fields).status == 431


def test_too_large_a_body_is_refused_before_it_is_read(server_port: int) -> None:
    """Refused on its Content-Length: the sidecar never buffers the 2 MiB."""
    head = (
        b"GET /v1/forward-auth HTTP/1.1\r\nHost: s\r\nX-Original-Method: POST\r\n"
        b"X-Original-URI: /api/docs\r\nContent-Length: 2097152\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", server_port), timeout=10) as sock:
        sock.sendall(head)
        assert sock.recv(65536).startswith(b"HTTP/1.1 413 ")
