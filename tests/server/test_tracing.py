"""`serve --otlp-endpoint`: a span per decision, received by a real OTLP/HTTP endpoint
(protobuf, as a collector receives it), child of the request's valid traceparent, and
named by the ECS decision log."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from server_support import ServerThread, forward_auth, make_config, request, write_policy

from policyengine.server.config import DecisionLogConfig

try:
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as trace_service
except ImportError:  # the `otel` extra, which the test extra includes
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        raise
    pytest.skip("the `otel` extra is not installed", allow_module_level=True)

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"


class Collector:
    """POST /v1/traces: the OTLP/HTTP protobuf requests, decoded."""

    def __init__(self) -> None:
        self.requests: list[Any] = []
        received = self.requests

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                assert self.path == "/v1/traces"
                assert self.headers["Content-Type"] == "application/x-protobuf"
                message = trace_service.ExportTraceServiceRequest()
                message.ParseFromString(body)
                received.append(message)
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1/traces"

    def spans(self) -> list[Any]:
        return [span for message in self.requests for resource in message.resource_spans
                for scope in resource.scope_spans for span in scope.spans]  # fmt: skip


@pytest.fixture
def collector() -> Iterator[Collector]:
    receiver = Collector()
    receiver.thread.start()
    yield receiver
    receiver.server.shutdown()


def attributes(span: Any) -> dict[str, Any]:
    values = {}
    for item in span.attributes:
        kind = item.value.WhichOneof("value")
        values[item.key] = getattr(item.value, kind)
    return values


def test_a_span_per_decision_reaches_the_collector(tmp_path: Path, collector: Collector) -> None:
    directory = write_policy(tmp_path / "p")
    log_file = tmp_path / "decisions.jsonl"
    config = make_config(directory, otlp_endpoint=collector.url, decision_cache=0,
                         decision_log=DecisionLogConfig(str(log_file), 1.0, "ecs"))  # fmt: skip
    with ServerThread(config) as server:
        parent = f"00-{TRACE}-{PARENT}-01"
        traced = forward_auth("GET", "/api/orders/7?token=s3cret", traceparent=parent,
                              **{"X-API-Key": "key-alice"})  # fmt: skip
        assert request(server.port, "GET", "/v1/forward-auth", traced).status == 200
        untraced = forward_auth("GET", "/api/orders/7", **{"X-API-Key": "wrong"})
        assert request(server.port, "GET", "/v1/forward-auth", untraced).status == 401
    # the worker's stop exported what was pending
    child, root = collector.spans()
    assert (child.trace_id.hex(), child.parent_span_id.hex()) == (TRACE, PARENT)
    assert (
        child.kind == child.SPAN_KIND_SERVER
        and child.end_time_unix_nano > child.start_time_unix_nano
    )
    assert attributes(child)["http.response.status_code"] == 200
    assert attributes(child)["url.path"] == "/api/orders/7"
    assert attributes(child)["policyengine.reason"] == "allow"
    assert attributes(root)["policyengine.reason"] == "authn.invalid"
    assert root.parent_span_id == b"" and root.trace_id.hex() != TRACE
    (resource,) = [r.resource for m in collector.requests for r in m.resource_spans][:1]
    assert {"key": "service.name"} and any(
        a.key == "service.name" and a.value.string_value == "policyengine"
        for a in resource.attributes
    )
    exported = b"".join(m.SerializeToString() for m in collector.requests)
    assert b"s3cret" not in exported and b"key-alice" not in exported
    # the log names the spans that were exported
    lines = [json.loads(line) for line in log_file.read_text().splitlines()]
    assert [(x["trace"]["id"], x["span"]["id"]) for x in lines] == [
        (span.trace_id.hex(), span.span_id.hex()) for span in (child, root)
    ]


def test_an_unsampled_parent_exports_nothing(tmp_path: Path, collector: Collector) -> None:
    config = make_config(write_policy(tmp_path / "p"), otlp_endpoint=collector.url)
    with ServerThread(config) as server:
        unsampled = forward_auth("GET", "/api/public", traceparent=f"00-{TRACE}-{PARENT}-00")
        assert request(server.port, "GET", "/v1/forward-auth", unsampled).status == 200
    assert collector.spans() == []


def test_a_bad_endpoint_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="http:// or https://"):
        make_config(tmp_path, otlp_endpoint="ftp://collector/v1/traces")
