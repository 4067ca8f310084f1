"""The W3C Trace Context `traceparent` header (level 1, §3.2), read strictly, and the ids
a decision's span gets: its trace's (the caller's, or a new one) and a new span id.

A malformed header is ignored, not trusted or repaired: the decision then starts a trace
of its own. Lowercase hex only; all-zero ids and version `ff` are invalid; version `00`
is exactly 55 characters, and a later version may append fields after a `-` (§3.2.4:
parse what version 00 defines, ignore the rest). A header sent twice arrives joined
with `, ` and is invalid.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?")
_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16


@dataclass(frozen=True, slots=True)
class TraceParent:
    trace_id: str  # 32 lowercase hex digits
    parent_id: str  # 16: the caller's span
    sampled: bool  # trace-flags bit 0


@dataclass(frozen=True, slots=True)
class SpanIds:
    """The ids a decision is logged (and exported) under."""

    trace_id: str
    span_id: str


def parse_traceparent(value: str | None) -> TraceParent | None:
    if value is None:
        return None
    match = _TRACEPARENT.fullmatch(value)
    if match is None:
        return None
    version, trace_id, parent_id, flags, rest = match.groups()
    if version == "ff" or (version == "00" and rest is not None):
        return None
    if trace_id == _ZERO_TRACE or parent_id == _ZERO_SPAN:
        return None
    return TraceParent(trace_id, parent_id, bool(int(flags, 16) & 1))


def new_id(bits: int) -> str:
    """A random, non-zero id of `bits` bits in lowercase hex (ids need not be secret)."""
    return f"{random.getrandbits(bits) or 1:0{bits // 4}x}"


def span_ids(traceparent: str | None) -> SpanIds:
    """The caller's trace id (else a new one) and a new span id."""
    parent = parse_traceparent(traceparent)
    return SpanIds(parent.trace_id if parent is not None else new_id(128), new_id(64))
