"""Decision log lines in the Elastic Common Schema (`--decision-log-format ecs`), and the
W3C trace context (`traceparent`) they carry.

ECS 8.11 field names and types, nested as ECS documents them, so a line loads into
Elasticsearch's ECS mapping (or OpenSearch's) without renames: the tests check every
field against tests/server/fixtures/ecs_fields.yaml. As in the plain format, no header value
other than the trace id, no credential, no body and no query value is ever written.

`trace.id` is the trace of the request's `traceparent` (tracecontext.py: read strictly, a
malformed one ignored) or a new one; `span.id` is the decision's own span, the one
exported over OTLP when `--otlp-endpoint` is given.
"""

from __future__ import annotations

from typing import Any

from policyengine.decision import Decision
from policyengine.server.tracecontext import SpanIds

ECS_VERSION = "8.11.0"


def ecs_document(
    decision: Decision,
    *,
    timestamp: str,
    decision_id: str,
    method: str,
    path: str,
    latency_us: int,
    source_ip: str | None,
    ids: SpanIds,
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
        "trace": {"id": ids.trace_id},
        "span": {"id": ids.span_id},
        "labels": labels,
    }
    if source_ip is not None:
        document["source"] = {"ip": source_ip}
    if decision.subject is not None:
        document["user"] = {"name": decision.subject}
    return document
