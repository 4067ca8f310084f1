"""A span per decision, exported over OTLP/HTTP (`serve --otlp-endpoint URL`, the
`otel` extra: opentelemetry-sdk and its OTLP/HTTP exporter in the JSON encoding).

JSON, not protobuf: the `grpc` extra's xds-protos ships an older copy of the
`opentelemetry.proto` modules, which replaces opentelemetry-proto's when both are
installed and breaks the protobuf exporter; the JSON exporter has its own codec.
Collectors take either encoding on the same URL.

The span is a child of the request's `traceparent` when it carries a valid one (read by
tracecontext.py, so the ECS log and the span agree on what is valid), and the SDK's
sampler follows that parent's sampled flag; without one it starts a trace. The ECS
decision log names the same trace and span. Spans leave in batches on a thread of the
SDK's, so a slow collector never holds a decision up; what it cannot take is dropped.
Attributes follow the HTTP semantic conventions; no credential, header, body or query
value is set on a span.
"""

from __future__ import annotations

import time
from typing import Any

from policyengine.decision import Decision
from policyengine.server.tracecontext import SpanIds, parse_traceparent


class MissingExtra(RuntimeError):
    """The `otel` extra is not installed."""


class DecisionTracer:
    def __init__(self, endpoint: str, *, service_name: str = "policyengine") -> None:
        try:
            from opentelemetry.exporter.otlp.json.http.trace_exporter import OTLPSpanExporter
            from opentelemetry.sdk.resources import Resource
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.trace.export import BatchSpanProcessor
        except ImportError:
            raise MissingExtra(
                "--otlp-endpoint needs the `otel` extra: pip install 'policyengine[otel]'"
            ) from None
        resource = Resource.create({"service.name": service_name})
        self._provider = TracerProvider(resource=resource, shutdown_on_exit=False)
        self._provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
        self._tracer = self._provider.get_tracer("policyengine")

    def record(
        self,
        decision: Decision,
        *,
        method: str,
        path: str,
        latency_us: int,
        traceparent: str | None,
        source_ip: str | None,
        decision_id: str,
        revision: str,
    ) -> SpanIds:
        """The decision's span, ended now and begun `latency_us` ago; its ids."""
        from opentelemetry import trace

        ended = time.time_ns()
        attributes: dict[str, Any] = {
            "http.request.method": method,
            "url.path": path,  # without the query
            "http.response.status_code": decision.status,
            "policyengine.reason": decision.reason.value,
            "policyengine.allow": decision.allow,
            "policyengine.policy_revision": revision,
        }
        optional = {"http.route": decision.route, "client.address": source_ip,
                    "policyengine.decision_id": decision_id or None}  # fmt: skip
        attributes.update({k: v for k, v in optional.items() if v is not None})
        span = self._tracer.start_span(
            "policyengine decide",
            context=_parent_context(traceparent),
            kind=trace.SpanKind.SERVER,
            attributes=attributes,
            start_time=ended - latency_us * 1000,
        )
        span.end(end_time=ended)
        context = span.get_span_context()
        return SpanIds(f"{context.trace_id:032x}", f"{context.span_id:016x}")

    def close(self) -> None:
        """Export what is pending and stop the exporter's thread."""
        self._provider.shutdown()


def _parent_context(traceparent: str | None) -> Any:
    from opentelemetry import trace

    parent = parse_traceparent(traceparent)
    if parent is None:
        return None
    flags = trace.TraceFlags(trace.TraceFlags.SAMPLED if parent.sampled else 0)
    remote = trace.SpanContext(
        int(parent.trace_id, 16), int(parent.parent_id, 16), is_remote=True, trace_flags=flags
    )
    return trace.set_span_in_context(trace.NonRecordingSpan(remote))
