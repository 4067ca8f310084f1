"""ECS decision logs: every field an ECS 8.11 field of its type, the W3C trace id read
strictly, nothing a client sent as a secret."""

from __future__ import annotations

import datetime
import ipaddress
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from server_support import ServerThread, forward_auth, make_config, request, write_policy

from policyengine.server.config import DecisionLogConfig
from policyengine.server.tracecontext import parse_traceparent

FIELDS = yaml.safe_load((Path(__file__).parent / "fixtures" / "ecs_fields.yaml").read_text())
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"


@pytest.mark.parametrize(
    ("header", "valid"),
    [
        (f"00-{TRACE}-{PARENT}-01", True),
        (f"00-{TRACE}-{PARENT}-00", True),  # not sampled: still the caller's trace
        (f"cc-{TRACE}-{PARENT}-01-what-the-future-adds", True),  # a later version: its prefix
        (f"cc-{TRACE}-{PARENT}-01", True),
        (f"00-{TRACE}-{PARENT}-01-extra", False),  # version 00 is exactly 55 characters
        (f"ff-{TRACE}-{PARENT}-01", False),  # version ff is never valid
        (f"00-{TRACE.upper()}-{PARENT}-01", False),  # lowercase hex only
        (f"00-{'0' * 32}-{PARENT}-01", False),  # an all-zero trace id
        (f"00-{TRACE}-{'0' * 16}-01", False),  # an all-zero parent id
        (f"00-{TRACE[:-1]}-{PARENT}-01", False),
        (f"00-{TRACE}-{PARENT}-1", False),
        (f" 00-{TRACE}-{PARENT}-01", False),
        (f"00-{TRACE}-{PARENT}-01, 00-{TRACE}-{PARENT}-01", False),  # sent twice
        (f"00_{TRACE}_{PARENT}_01", False),
        (f"00-{TRACE[:-1]}g-{PARENT}-01", False),
        ("", False),
    ],
)
def test_traceparent_is_read_strictly(header: str, valid: bool) -> None:
    parsed = parse_traceparent(header)
    assert (parsed.trace_id if parsed else None) == (TRACE if valid else None)
    if parsed is not None:
        assert parsed.parent_id == PARENT and parsed.sampled is header[53:55].endswith("1")


def flatten(document: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for name, value in document.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{name}."))
        else:
            flat[prefix + name] = value
    return flat


def check_type(name: str, value: Any, spec: dict[str, Any]) -> None:
    values = value if spec.get("array") else [value]
    assert isinstance(values, list), name
    for item in values:
        kind = spec["type"]
        if kind in ("keyword", "wildcard"):
            assert isinstance(item, str), name
        elif kind == "long":
            assert isinstance(item, int) and not isinstance(item, bool), name
        elif kind == "ip":
            ipaddress.ip_address(item)
        elif kind == "date":
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", item), item
            datetime.datetime.fromisoformat(item)
        else:
            raise AssertionError(f"no check for the ECS type {kind}")
        if "allowed" in spec:
            assert item in spec["allowed"], (name, item)


def check_ecs(line: dict[str, Any]) -> dict[str, Any]:
    flat = flatten(line)
    unknown = sorted(set(flat) - set(FIELDS["fields"]))
    assert not unknown, f"not ECS fields: {unknown}"
    for name, value in flat.items():
        check_type(name, value, FIELDS["fields"][name])
    assert flat["ecs.version"] == FIELDS["version"]
    return flat


def test_the_sidecar_writes_ecs_lines(tmp_path: Path) -> None:
    directory = write_policy(tmp_path / "p")
    log_file = tmp_path / "decisions.jsonl"
    config = make_config(
        directory, decision_log=DecisionLogConfig(str(log_file), 1.0, "ecs"), decision_cache=0
    )
    valid = f"00-{TRACE}-{PARENT}-01"
    with ServerThread(config) as server:
        asks = [
            forward_auth(
                "GET",
                "/api/orders/7?token=s3cret-query",
                traceparent=valid,
                **{"X-API-Key": "key-alice"},
            ),
            forward_auth(
                "GET",
                "/api/orders/7",
                traceparent=f"00-{TRACE.upper()}-{PARENT}-01",
                **{"X-API-Key": "wrong-key-guess"},
            ),
            forward_auth("GET", "/api/public"),
        ]
        statuses = [request(server.port, "GET", "/v1/forward-auth", h).status for h in asks]
        revision = server.call(_revision(server))
    assert statuses == [200, 401, 200]
    text = log_file.read_text()
    for secret in ("s3cret-query", "key-alice", "wrong-key-guess", "token="):
        assert secret not in text
    lines = [check_ecs(json.loads(line)) for line in text.splitlines()]
    allowed, refused, anonymous = lines
    assert allowed["trace.id"] == TRACE and allowed["span.id"] != PARENT
    assert (allowed["event.outcome"], allowed["event.reason"]) == ("success", "allow")
    assert (allowed["url.path"], allowed["http.request.method"]) == ("/api/orders/7", "GET")
    assert (allowed["user.name"], allowed["source.ip"]) == ("alice", "127.0.0.1")
    assert allowed["http.response.status_code"] == 200
    assert allowed["labels.policy_revision"] == revision and len(revision) == 16
    # a malformed traceparent is not trusted: the decision starts a trace of its own
    assert refused["trace.id"] != TRACE.lower() and re.fullmatch(
        "[0-9a-f]{32}", refused["trace.id"]
    )
    assert (refused["event.outcome"], refused["event.reason"]) == ("failure", "authn.invalid")
    assert "user.name" not in refused and "user.name" not in anonymous
    spans = [line["span.id"] for line in lines]
    assert len(set(spans)) == 3 and all(re.fullmatch("[0-9a-f]{16}", s) for s in spans)


async def _revision(server: ServerThread) -> str:
    assert server.worker is not None
    return str(server.worker.app.holder.engine.policy.revision)


def test_the_revision_is_a_content_hash(tmp_path: Path) -> None:
    from policyengine import Engine

    first = Engine.load(write_policy(tmp_path / "a")).policy.revision
    assert Engine.load(write_policy(tmp_path / "b")).policy.revision == first
    changed = write_policy(tmp_path / "c", "route GET /x {\n    allow anyone\n}\n")
    assert Engine.load(changed).policy.revision != first


def test_decide_logs_the_address_of_the_request_it_decided(tmp_path: Path) -> None:
    directory = write_policy(tmp_path / "p")
    log_file = tmp_path / "decisions.jsonl"
    config = make_config(directory, decision_log=DecisionLogConfig(str(log_file), 1.0, "ecs"))
    body = json.dumps({"method": "GET", "path": "/api/public?q=secret", "client_ip": "10.1.2.3"})
    with ServerThread(config) as server:
        trace = {"traceparent": f"00-{TRACE}-{PARENT}-01"}
        reply = request(server.port, "POST", "/v1/decide", trace, body.encode())
        assert reply.status == 200
    (line,) = [check_ecs(json.loads(x)) for x in log_file.read_text().splitlines()]
    assert (line["source.ip"], line["url.path"], line["trace.id"]) == (
        "10.1.2.3",
        "/api/public",
        TRACE,
    )
