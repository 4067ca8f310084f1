"""Decision log lines in the Elastic Common Schema (`--decision-log-format ecs`), and the
W3C trace context (`traceparent`) they carry.

ECS 8.11 field names and types, nested as ECS documents them, so a line loads into
Elasticsearch's ECS mapping (or OpenSearch's) without renames: the tests check every
field against tests/server/ecs_fields.yaml. As in the plain format, no header value
other than the trace id, no credential, no body and no query value is ever written.

`traceparent` (W3C Trace Context, level 1 §3.2) is read strictly: a malformed one is
ignored (not trusted, not repaired), and the decision starts a trace of its own.
`span.id` is a new id for each decision: the decision is a span of that trace.
"""

from __future__ import annotations

import random
import re
from typing import Any

from policyengine.decision import Decision

ECS_VERSION = "8.11.0"

# version, trace-id, parent-id, trace-flags, lowercase hex; a later version may append
# fields after a `-` (§3.2.4: parse what version 00 defines, ignore the rest)
_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?")
_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16


def trace_id_of(traceparent: str | None) -> str | None:
    """The trace id of a valid `traceparent`, else None."""
    if traceparent is None:
        return None
    match = _TRACEPARENT.fullmatch(traceparent)
    if match is None:
        return None
    version, trace_id, parent_id, _, rest = match.groups()
    if version == "ff" or (version == "00" and rest is not None):
        return None  # ff is never valid; version 00 is exactly 55 characters
    if trace_id == _ZERO_TRACE or parent_id == _ZERO_SPAN:
        return None
    return trace_id


def new_id(bits: int) -> str:
    """A random, non-zero id of `bits` bits in lowercase hex (ids need not be secret)."""
    return f"{random.getrandbits(bits) or 1:0{bits // 4}x}"


def ecs_document(
    decision: Decision,
    *,
    timestamp: str,
    decision_id: str,
    method: str,
    path: str,
    latency_us: int,
    source_ip: str | None,
    traceparent: str | None,
    revision: str,
) -> dict[str, Any]:
    """One decision as an ECS event. `path` must come without its query."""
    event: dict[str, Any] = {
        "kind": "event",
        "category": ["web"],
        "type": ["allowed" if decision.allow else "denied"],
        "outcome": "success" if decision.allow else "failure",
        "reason": decision.reason.value,
        "duration": latency_us * 1000,  # ECS: nanoseconds
    }
    if decision_id:
        event["id"] = decision_id
    labels = {"policy_revision": revision}
    if decision.policy is not None:
        labels["policy"] = decision.policy
    if decision.route is not None:
        labels["route"] = decision.route
    document: dict[str, Any] = {
        "@timestamp": timestamp,
        "ecs": {"version": ECS_VERSION},
        "event": event,
        "http": {"request": {"method": method}, "response": {"status_code": decision.status}},
        "url": {"path": path},
        "trace": {"id": trace_id_of(traceparent) or new_id(128)},
        "span": {"id": new_id(64)},
        "labels": labels,
    }
    if source_ip is not None:
        document["source"] = {"ip": source_ip}
    if decision.subject is not None:
        document["user"] = {"name": decision.subject}
    return document
