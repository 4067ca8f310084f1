"""`serve --grpc-port`: Envoy's ext_authz gRPC service, asked the way Envoy asks it.

The CheckRequests here carry what Envoy 1.40 puts in them with the documented
docs/gateways/envoy/envoy-grpc.yaml: pseudo-headers and every request header in
`attributes.request.http.headers` (names lowercased), the path with its query, the
Host, and the body as bytes (`pack_as_bytes`). tests/server/test_envoy.py runs the
real Envoy in front of the same service.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from server_support import (
    ServerThread,
    free_port,
    make_config,
    request,
    require_module,
    serve_process,
    wait_for_port,
    write_policy,
)

# the `grpc` extra, in the `test` extra: missing under CI=true is a failure, never a skip
grpc = require_module("grpc")

from envoy.service.auth.v3 import external_auth_pb2, external_auth_pb2_grpc  # noqa: E402
from grpc_health.v1 import health_pb2, health_pb2_grpc  # noqa: E402

from policyengine.cli import main  # noqa: E402
from policyengine.server.clientip import TrustedProxies  # noqa: E402
from policyengine.server.config import DecisionLogConfig  # noqa: E402

CheckRequest = external_auth_pb2.CheckRequest


class Sidecar:
    def __init__(self, running: ServerThread, log: Path) -> None:
        worker = running.worker
        assert worker is not None and worker.grpc is not None
        self.running = running
        self.http_port = running.port
        self.channel = grpc.insecure_channel(f"127.0.0.1:{worker.grpc.port}")
        self.stub = external_auth_pb2_grpc.AuthorizationStub(self.channel)
        self.log = log

    def check(
        self,
        method: str,
        path: str,
        headers: dict[str, str] | None = None,
        body: bytes = b"",
        downstream: str = "127.0.0.2",
    ) -> Any:
        check = CheckRequest()
        http = check.attributes.request.http
        http.method, http.path, http.host, http.scheme = method, path, "shop.example", "http"
        http.headers.update(
            {
                ":method": method,
                ":path": path,
                ":authority": "shop.example",
                "x-forwarded-for": downstream,
                "x-request-id": "a7c1f1e2",
                **{name.lower(): value for name, value in (headers or {}).items()},
            }
        )
        http.raw_body = body
        if body:
            http.headers["content-length"] = str(len(body))
        return self.stub.Check(check, timeout=5)


@pytest.fixture(scope="module")
def sidecar(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sidecar]:
    root = tmp_path_factory.mktemp("grpc")
    policy = write_policy(root / "policy")
    log = root / "decisions.jsonl"
    config = make_config(
        policy,
        grpc_port=0,
        trusted_proxies=TrustedProxies.parse(["127.0.0.1/32"]),
        decision_log=DecisionLogConfig(str(log)),
    )
    with ServerThread(config) as running:
        side = Sidecar(running, log)
        yield side
        side.channel.close()


def upstream(response: Any) -> dict[str, str]:
    headers = response.ok_response.headers
    for option in headers:  # every identity header replaces what the client sent
        assert option.append_action == option.HeaderAppendAction.OVERWRITE_IF_EXISTS_OR_ADD
    return {option.header.key.lower(): option.header.value for option in headers}


def denial(response: Any) -> tuple[int, dict[str, str], Any]:
    assert response.status.code != 0 and response.HasField("denied_response")
    denied = response.denied_response
    headers = {option.header.key.lower(): option.header.value for option in denied.headers}
    assert headers["content-type"] == "application/json"
    return denied.status.code, headers, json.loads(denied.body)


def test_an_allow_sets_the_identity_and_removes_the_rest(sidecar: Sidecar) -> None:
    alice = sidecar.check("GET", "/api/orders/7?x=1", {"X-API-Key": "key-alice"})
    assert alice.status.code == 0 and alice.HasField("ok_response")
    assert upstream(alice) == {"x-auth-subject": "alice", "x-auth-roles": "user"}
    assert list(alice.ok_response.headers_to_remove) == []
    anonymous = sidecar.check("GET", "/api/public", {"X-Auth-Subject": "root"})
    assert anonymous.status.code == 0 and upstream(anonymous) == {}
    assert sorted(anonymous.ok_response.headers_to_remove) == ["x-auth-roles", "x-auth-subject"]


def test_denials_carry_status_headers_and_body(sidecar: Sidecar) -> None:
    status, headers, body = denial(sidecar.check("GET", "/api/orders/7"))
    assert status == 401 and body["reason"] == "authn.missing"
    assert headers["www-authenticate"] == 'ApiKey realm="api_key", header="X-API-Key"'
    assert headers["x-decision-id"] == body["decision_id"]
    status, _, body = denial(sidecar.check("DELETE", "/api/orders/7", {"X-API-Key": "key-alice"}))
    assert status == 403 and body["reason"] == "authz.no_allow"
    limited = [sidecar.check("GET", "/api/limited", {"X-API-Key": "key-ops"}) for _ in range(3)]
    assert [r.status.code for r in limited[:2]] == [0, 0]
    status, headers, body = denial(limited[2])
    assert status == 429 and int(headers["retry-after"]) > 0
    assert body["reason"] == "ratelimit.exceeded"


def test_queries_and_bodies_are_validated(sidecar: Sidecar) -> None:
    status, _, body = denial(sidecar.check("GET", "/api/search?q=" + "x" * 20))
    assert status == 400 and body["errors"][0]["pointer"] == "/q"
    assert sidecar.check("GET", "/api/search?q=shoes").status.code == 0
    json_headers = {"X-API-Key": "key-alice", "Content-Type": "application/json"}
    good = sidecar.check(
        "POST", "/api/orders", json_headers, b'{"productId":"ABCD1234","quantity":1}'
    )
    assert good.status.code == 0
    bad = sidecar.check(
        "POST", "/api/orders", json_headers, b'{"productId":"ABCD1234","quantity":0}'
    )
    status, _, body = denial(bad)
    assert status == 400 and body["errors"][0]["pointer"] == "/quantity"
    big = b'{"productId":"ABCD1234","quantity":1,"x":"' + b"a" * 2000 + b'"}'
    status, _, body = denial(sidecar.check("POST", "/api/orders", json_headers, big))
    assert status == 413 and body["reason"] == "input.too_large"


def test_the_client_address_comes_from_the_trusted_hops(sidecar: Sidecar) -> None:
    spoofed = {"X-Forwarded-For": "10.1.2.3, 127.0.0.2"}  # the client wrote the left one
    assert denial(sidecar.check("GET", "/api/internal", spoofed))[0] == 403
    assert sidecar.check("GET", "/api/local").status.code == 0


def test_a_path_that_is_not_a_path_is_refused(sidecar: Sidecar) -> None:
    status, _, body = denial(sidecar.check("OPTIONS", "*"))
    assert status == 400 and body["reason"] == "request.invalid"


def test_decisions_are_logged_and_counted_as_envoy_grpc(sidecar: Sidecar) -> None:
    denied = denial(sidecar.check("GET", "/api/orders/8?token=s3cret"))[2]
    metrics = request(sidecar.http_port, "GET", "/metrics").body.decode()
    assert 'endpoint="envoy-grpc"' in metrics

    async def flush() -> None:
        assert sidecar.running.worker is not None
        log = sidecar.running.worker.app.decision_log
        assert log is not None
        log.flush()

    sidecar.running.call(flush())
    lines = [json.loads(line) for line in sidecar.log.read_text().splitlines()]
    logged = [line for line in lines if line["decision_id"] == denied["decision_id"]]
    assert logged[0]["path"] == "/api/orders/8?token" and logged[0]["status"] == 401


def test_health_reports_serving(sidecar: Sidecar) -> None:
    health = health_pb2_grpc.HealthStub(sidecar.channel)
    for service in ("", "envoy.service.auth.v3.Authorization"):
        answer = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
        assert answer.status == health_pb2.HealthCheckResponse.SERVING


def test_workers_share_the_grpc_port(tmp_path: Path) -> None:
    policy = write_policy(tmp_path / "policy")
    grpc_port = free_port()
    with serve_process(policy, "--workers", "2", "--grpc-port", str(grpc_port)):
        wait_for_port(grpc_port)
        for _ in range(4):  # a connection each: the kernel spreads them over the workers
            with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
                stub = external_auth_pb2_grpc.AuthorizationStub(channel)
                check = CheckRequest()
                http = check.attributes.request.http
                http.method, http.path, http.host = "GET", "/api/public", "shop.example"
                assert stub.Check(check, timeout=5).status.code == 0


def test_the_flag_without_the_extra_is_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *args: None if name == "grpc" else real(name, *args),
    )
    policy = write_policy(tmp_path / "policy")
    result = CliRunner().invoke(main, ["serve", str(policy), "--grpc-port", "0"])
    assert result.exit_code == 2
    assert "--grpc-port needs the `grpc` extra" in result.output


def test_a_grpc_port_in_use_is_a_clear_error(tmp_path: Path, sidecar: Sidecar) -> None:
    policy = write_policy(tmp_path / "policy")
    assert sidecar.running.worker is not None and sidecar.running.worker.grpc is not None
    taken = str(sidecar.running.worker.grpc.port)
    result = CliRunner().invoke(main, ["serve", str(policy), "--port", "0", "--grpc-port", taken])
    assert result.exit_code == 1 and "cannot listen for gRPC" in result.output


def test_raw_header_maps_are_read_like_the_headers(sidecar: Sidecar) -> None:
    # Envoy's encode_raw_headers: header_map with bytes values instead of the string map
    check = CheckRequest()
    http = check.attributes.request.http
    http.method, http.path, http.host = "GET", "/api/orders/7", "shop.example"
    for name, value in ((":path", b"/api/orders/7"), ("x-api-key", b"key-alice"),
                        ("x-forwarded-for", b"127.0.0.2")):  # fmt: skip
        http.header_map.headers.add(key=name, raw_value=value)
    answer = sidecar.stub.Check(check, timeout=5)
    assert answer.status.code == 0 and upstream(answer)["x-auth-subject"] == "alice"
    http.header_map.headers.add(key="x-api-key", raw_value=b"key-ops")  # sent twice
    status, _, body = denial(sidecar.stub.Check(check, timeout=5))
    assert status == 400 and body["reason"] == "authn.ambiguous"


def test_the_grpc_port_speaks_tls_and_mtls_with_the_sidecars_files(tmp_path: Path) -> None:
    import trustme

    from policyengine.server.tls import TlsFiles

    ca, other = trustme.CA(), trustme.CA()
    server = ca.issue_cert("127.0.0.1", common_name="sidecar")
    files = {}
    for name, blob in (
        ("cert.pem", server.cert_chain_pems[0].bytes()),
        ("key.pem", server.private_key_pem.bytes()),
        ("client-ca.pem", ca.cert_pem.bytes()),
    ):
        files[name] = tmp_path / name
        files[name].write_bytes(blob)
    tls = TlsFiles(files["cert.pem"], files["key.pem"], files["client-ca.pem"])
    config = make_config(write_policy(tmp_path / "policy"), grpc_port=0, tls=tls)

    def call(port: int, client: Any) -> Any:
        credentials = grpc.ssl_channel_credentials(
            root_certificates=ca.cert_pem.bytes(),
            private_key=client.private_key_pem.bytes() if client else None,
            certificate_chain=client.cert_chain_pems[0].bytes() if client else None,
        )
        with grpc.secure_channel(f"127.0.0.1:{port}", credentials) as channel:
            check = CheckRequest()
            http = check.attributes.request.http
            http.method, http.path, http.host = "GET", "/api/public", "shop.example"
            stub = external_auth_pb2_grpc.AuthorizationStub(channel)
            return stub.Check(check, timeout=5)

    with ServerThread(config) as running:
        assert running.worker is not None and running.worker.grpc is not None
        port = running.worker.grpc.port
        gateway = ca.issue_cert("gateway.example")
        assert call(port, gateway).status.code == 0
        for stranger in (None, other.issue_cert("gateway.example")):  # mTLS: no decision
            with pytest.raises(grpc.RpcError) as refused:
                call(port, stranger)
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
        plain = grpc.insecure_channel(f"127.0.0.1:{port}")  # no plaintext either
        with plain, pytest.raises(grpc.RpcError):
            external_auth_pb2_grpc.AuthorizationStub(plain).Check(CheckRequest(), timeout=2)


def test_an_identical_check_is_answered_from_the_decision_cache(sidecar: Sidecar) -> None:
    def reused() -> float:
        metrics = request(sidecar.http_port, "GET", "/metrics").body.decode()
        (line,) = [x for x in metrics.splitlines() if x.startswith("policyengine_decisions_reused")]
        return float(line.split()[-1])

    headers = {"X-API-Key": "key-ops", "X-Trace": "1"}
    answers = [sidecar.check("GET", "/api/orders/9", headers) for _ in range(3)]
    before = reused()
    again = sidecar.check("GET", "/api/orders/9", {**headers, "X-Trace": "2"})  # not read
    assert reused() == before + 1
    assert {a.SerializeToString() for a in [*answers, again]} == {answers[0].SerializeToString()}
    assert upstream(again) == {"x-auth-subject": "ops", "x-auth-roles": "admin"}
