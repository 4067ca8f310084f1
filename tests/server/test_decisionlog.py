"""Decision logs: the facts of each decision, sampled allows, buffered writes."""

from __future__ import annotations

import io
import json

from policyengine.decision import Decision
from policyengine.request import Reason
from policyengine.server.decisionlog import DecisionLog, path_without_query_values

ALLOW = Decision(
    True, 200, Reason.ALLOW, "allowed", "GET /o", "p:1", "alice", ("user",), policy="shop"
)
DENY = Decision(False, 403, Reason.NO_ALLOW, "no", "GET /o", subject="bob", policy="shop")


def test_query_values_are_removed_but_names_kept() -> None:
    assert path_without_query_values("/a/b") == "/a/b"
    assert path_without_query_values("/a?token=s3cret&x=1&flag") == "/a?token&x&flag"
    assert path_without_query_values("/a?") == "/a?"


def test_a_line_per_decision_once_flushed() -> None:
    stream = io.BytesIO()
    log = DecisionLog(stream)
    log.record(ALLOW, "id-1", "GET", "/o?k=v", 42)
    assert stream.getvalue() == b""  # buffered
    log.flush()
    line = json.loads(stream.getvalue())
    assert line["decision_id"] == "id-1" and line["path"] == "/o?k"
    assert (line["policy"], line["route"], line["subject"]) == ("shop", "GET /o", "alice")
    assert (line["status"], line["reason"], line["latency_us"]) == (200, "allow", 42)
    assert line["time"].endswith("Z") and len(line["time"]) == len("2026-01-01T00:00:00.000Z")


def test_sampling_drops_allows_only() -> None:
    stream = io.BytesIO()
    log = DecisionLog(stream, sample=0.0)
    for n in range(50):
        log.record(ALLOW, f"a-{n}", "GET", "/o", 1)
        log.record(DENY, f"d-{n}", "GET", "/o", 1)
    log.flush()
    lines = [json.loads(x) for x in stream.getvalue().splitlines()]
    assert len(lines) == 50 and {x["reason"] for x in lines} == {"authz.no_allow"}


def test_a_partial_sample_keeps_about_that_share() -> None:
    stream = io.BytesIO()
    log = DecisionLog(stream, sample=0.25)
    for n in range(4000):
        log.record(ALLOW, f"a-{n}", "GET", "/o", 1)
    log.flush()
    assert 800 < len(stream.getvalue().splitlines()) < 1200


def test_a_full_buffer_is_written_without_waiting() -> None:
    stream = io.BytesIO()
    log = DecisionLog(stream)
    for n in range(1000):  # about 200 bytes each: past 64 KiB
        log.record(DENY, f"d-{n}", "GET", "/o", 1)
    assert stream.getvalue().count(b"\n") >= 300
