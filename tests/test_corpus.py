"""The data-driven corpus (tests/cases/<topic>/*.yaml) through every face of the engine.

Each case runs through the Python API and, unless it uses the `identity:` shortcut
(which only trusted in-process callers have), through `policyengine eval` and through
the sidecar over a real socket, as each gateway describes the request: nginx's and
Traefik's forward-auth header views and Envoy's ext_authz check request (all from a
`--trusted-proxy` hop, as docs/gateways/ configure them).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from click.testing import CliRunner

from policyengine import Engine
from policyengine.cli import main
from policyengine.decision import Decision, InputError, Reason, Request
from policyengine.server.clientip import TrustedProxies
from policyengine.testing import (
    Case,
    CaseFile,
    FixedClock,
    compare,
    load_case_file,
    write_policy_dir,
)

sys.path.insert(0, str(Path(__file__).parent / "server"))  # importlib mode: the helpers
from server_support import ServerThread, exchange, make_config, parse_response

CORPUS = Path(__file__).parent / "cases"
FILES = sorted(CORPUS.rglob("*.yaml"))


def _load(path: Path) -> CaseFile:
    return load_case_file(path)


@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_corpus_through_python_api(path: Path, tmp_path: Path) -> None:
    case_file = _load(path)
    clock = FixedClock()
    engine = Engine.load(write_policy_dir(case_file, tmp_path), clock=clock)
    failures = []
    for case in case_file.cases:
        clock.now += case.advance
        problems = compare(case.expect, engine.decide(case.request))
        failures.extend(f"{case.name}: {p}" for p in problems)
    assert not failures, "\n".join(failures)


def _eval_via_cli(policy_dir: Path, case: Case) -> Decision:
    request = case.request
    args = ["eval", str(policy_dir), request.method, request.path, "--format", "json"]
    for name, value in request.headers.items():
        args += ["-H", f"{name}: {value}"]
    if request.body is not None:
        body = request.body if isinstance(request.body, str) else json.dumps(request.body)
        args += ["--body", body]
    if request.client_ip:
        args += ["--client-ip", request.client_ip]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == (0 if json.loads(result.output)["allow"] else 1), result.output
    data = json.loads(result.output)
    return Decision(
        data["allow"],
        data["status"],
        Reason(data["reason"]),
        data["message"],
        data["route"],
        data["rule"],
        data["subject"],
        tuple(data["roles"]),
        data["upstream_headers"],
        data["response_headers"],
        tuple(InputError(e["pointer"], e["message"]) for e in data["errors"]),
    )


STATELESS = [p for p in FILES if not any(c.advance for c in _load(p).cases)]


@pytest.mark.parametrize("path", STATELESS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_corpus_through_python_api_with_wire_pairs(path: Path, tmp_path: Path) -> None:
    """Headers given as the (name, value) pairs of the wire decide as the mapping does."""
    case_file = _load(path)
    engine = Engine.load(write_policy_dir(case_file, tmp_path), clock=FixedClock())
    failures = []
    for case in case_file.cases:
        request = case.request
        pairs = [(name.encode("latin-1"), value) for name, value in request.headers.items()]
        on_the_wire = Request(request.method, request.path, pairs, request.body,
                              request.client_ip, request.identity)  # fmt: skip
        problems = compare(case.expect, engine.decide(on_the_wire))
        failures.extend(f"{case.name}: {p}" for p in problems)
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("path", STATELESS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_corpus_through_cli(path: Path, tmp_path: Path) -> None:
    case_file = _load(path)
    policy_dir = write_policy_dir(case_file, tmp_path)
    failures = []
    for case in case_file.cases:
        if case.request.identity is not None:
            continue
        problems = compare(case.expect, _eval_via_cli(policy_dir, case))
        failures.extend(f"{case.name}: {p}" for p in problems)
    assert not failures, "\n".join(failures)


def test_corpus_is_not_empty() -> None:
    assert len(FILES) >= 5
    assert sum(len(_load(p).cases) for p in FILES) >= 60


# -- the sidecar, as each gateway asks it -----------------------------------------------
VIEWS = ("nginx", "traefik", "envoy")
# what the sidecar's answer says of a decision (the route and rule stay in its log)
SIDECAR_KEYS = {"allow", "status", "reason", "message", "errors", "subject",
                "upstream_headers", "response_headers"}  # fmt: skip


def _original_host(case: Case) -> str | None:
    """The host the gateway saw: `Host`, else the authority of an absolute-form target
    (which nginx takes for `$host`, RFC 9112 §3.2.2)."""
    host = next((v for n, v in case.request.headers.items() if n.lower() == "host"), None)
    if host is None and not case.request.path.startswith("/"):
        host = urlsplit(case.request.path).netloc or None
    return host


def _check_request(view: str, case: Case) -> bytes | None:
    """The request the gateway sends the sidecar for the case; None when the gateway
    could not ask about it: forward-auth carries no body, and Envoy's check request is
    the request line itself, where Envoy's own parser has refused a method that is no
    known token or a raw non-ASCII target (as the sidecar's does: 400 `request.malformed`)
    and split an absolute-form target into `:authority` and `:path`."""
    request = case.request
    line = request.method.isupper() and request.path[:1] == "/" and request.path.isascii()
    if view == "envoy" and not line:
        return None
    body = request.body
    if isinstance(body, str):
        body = body.encode()
    elif body is not None and not isinstance(body, bytes):
        body = json.dumps(body).encode()
    if body is not None and view != "envoy":
        return None
    # the client's own headers pass through; a client's X-Forwarded-* is replaced
    client = [
        (n, v)
        for n, v in request.headers.items()
        if n.lower() not in ("host", "x-forwarded-host", "x-forwarded-for")
    ]
    host = _original_host(case)
    # a gateway that saw no host names none (its own `Host` would be another host)
    own_host = [] if host is None else ["Host: policyengine"]
    if view == "nginx":
        lines = ["GET /v1/forward-auth HTTP/1.1", *own_host,
                 f"X-Original-Method: {request.method}",
                 f"X-Original-URI: {request.path}"]  # fmt: skip
    elif view == "traefik":
        lines = ["GET /v1/forward-auth HTTP/1.1", *own_host,
                 f"X-Forwarded-Method: {request.method}", f"X-Forwarded-Uri: {request.path}",
                 "X-Forwarded-Proto: http"]  # fmt: skip
    else:  # Envoy: the original method, prefix + target and Host; no X-Forwarded-Host
        lines = [f"{request.method} /v1/envoy{request.path} HTTP/1.1"]
        if host is not None:
            lines.append(f"Host: {host}")
        lines.append(f"Content-Length: {len(body or b'')}")
    if view != "envoy" and host is not None:
        lines.append(f"X-Forwarded-Host: {host}")
    if request.client_ip is not None:
        lines.append(f"X-Forwarded-For: {request.client_ip}")
    lines += [f"{n}: {v}" for n, v in client]
    lines.append("Connection: close")
    head = "\r\n".join(lines) + "\r\n\r\n"
    return head.encode("utf-8") + (body or b"")


def _decision_of(reply: bytes) -> Decision:
    """The decision as the sidecar's answer tells it."""
    status, headers, body = parse_response(reply)
    if status == 200:
        subject = headers.get("x-auth-subject") or None
        upstream = {k: headers[k] for k in ("x-auth-subject", "x-auth-roles") if headers.get(k)}
        return Decision(True, 200, Reason.ALLOW, "allowed", subject=subject,
                        upstream_headers=upstream, response_headers=headers)  # fmt: skip
    data = json.loads(body)
    errors = tuple(InputError(e["pointer"], e["message"]) for e in data.get("errors", []))
    return Decision(False, status, Reason(data["reason"]), data["message"],
                    response_headers=headers, errors=errors)  # fmt: skip


@pytest.fixture(scope="module")
def sidecars(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[Path, ServerThread]]:
    """One sidecar per stateless corpus file, on the corpus clock, trusting 127.0.0.1."""
    running: dict[Path, ServerThread] = {}
    try:
        for path in STATELESS:
            policy_dir = write_policy_dir(_load(path), tmp_path_factory.mktemp(path.stem))
            config = make_config(policy_dir, trusted_proxies=TrustedProxies.parse(["127.0.0.1/32"]))
            server = running[path] = ServerThread(config).__enter__()
            assert server.worker is not None
            server.worker.app.holder.swap(Engine.load(policy_dir, clock=FixedClock()))
        yield running
    finally:
        for server in running.values():
            server.__exit__(None, None, None)


@pytest.mark.parametrize("view", VIEWS)
@pytest.mark.parametrize("path", STATELESS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_corpus_through_the_sidecar(
    path: Path, view: str, sidecars: dict[Path, ServerThread]
) -> None:
    port = sidecars[path].port
    failures, asked = [], 0
    for case in _load(path).cases:
        raw = _check_request(view, case)
        if case.request.identity is not None or raw is None:
            continue
        asked += 1
        expect = {k: v for k, v in case.expect.items() if k in SIDECAR_KEYS}
        try:
            decision = _decision_of(exchange(port, raw))
        except ValueError as err:
            failures.append(f"{case.name}: {err}")
            continue
        problems = compare(expect, decision)
        failures.extend(f"{case.name}: {p}" for p in problems)
    assert asked, "no case of the file reached the sidecar"
    assert not failures, "\n".join(failures)
