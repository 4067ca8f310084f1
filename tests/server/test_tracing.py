"""`serve --otlp-endpoint`: a span per decision, received by a real OTLP/HTTP endpoint
(OTLP/JSON, as a collector receives it), child of the request's valid traceparent, and
named by the ECS decision log."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from server_support import (
    ServerThread,
    forward_auth,
    make_config,
    request,
    require_module,
    write_policy,
)

from policyengine.server.config import DecisionLogConfig

require_module("opentelemetry.exporter.otlp.json.http")  # the `otel` extra

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"


class Collector:
    """POST /v1/traces: the OTLP/HTTP requests (ExportTraceServiceRequest as JSON)."""

    def __init__(self) -> None:
        self.requests: list[Any] = []
        received = self.requests

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                assert self.path == "/v1/traces"
                assert self.headers["Content-Type"] == "application/json"
                received.append(json.loads(body))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1/traces"

    def spans(self) -> list[Any]:
        return [span for message in self.requests for resource in message["resourceSpans"]
                for scope in resource["scopeSpans"] for span in scope["spans"]]  # fmt: skip


@pytest.fixture
def collector() -> Iterator[Collector]:
    receiver = Collector()
    receiver.thread.start()
    yield receiver
    receiver.server.shutdown()


def attributes(item: Any) -> dict[str, Any]:
    """OTLP/JSON attributes: {"key", "value": {"stringValue" | "intValue" | ...}}."""
    return {a["key"]: next(iter(a["value"].values())) for a in item["attributes"]}


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
    # the worker's stop exported what was pending (OTLP/JSON: ids in hex, ints as strings)
    child, root = collector.spans()
    assert (child["traceId"], child["parentSpanId"]) == (TRACE, PARENT)
    assert child["kind"] == 2  # SPAN_KIND_SERVER
    assert int(child["endTimeUnixNano"]) > int(child["startTimeUnixNano"])
    assert attributes(child)["http.response.status_code"] == "200"
    assert attributes(child)["url.path"] == "/api/orders/7"
    assert attributes(child)["policyengine.reason"] == "allow"
    assert attributes(root)["policyengine.reason"] == "authn.invalid"
    assert not root.get("parentSpanId") and root["traceId"] != TRACE
    resource = collector.requests[0]["resourceSpans"][0]["resource"]
    assert attributes(resource)["service.name"] == "policyengine"
    exported = json.dumps(collector.requests)
    assert "s3cret" not in exported and "key-alice" not in exported
    # the log names the spans that were exported
    lines = [json.loads(line) for line in log_file.read_text().splitlines()]
    assert [(x["trace"]["id"], x["span"]["id"]) for x in lines] == [
        (span["traceId"], span["spanId"]) for span in (child, root)
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
