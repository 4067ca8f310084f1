"""The gRPC port (`--grpc-port`) reloads the sidecar's TLS files as the HTTP port does
(test_envoy_grpc.py checks TLS and mTLS themselves)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme
from server_support import ServerThread, make_config, require_module, write_policy

grpc = require_module("grpc")  # the `grpc` extra: under CI=true missing is a failure

from grpc_health.v1 import health_pb2, health_pb2_grpc  # noqa: E402

from policyengine.server.tls import TlsFiles  # noqa: E402


def write_pair(directory: Path, ca: trustme.CA, name: str) -> tuple[Path, Path]:
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert_file, key_file = directory / f"{name}.pem", directory / f"{name}.key"
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    cert.private_key_pem.write_to_path(str(key_file))
    return cert_file, key_file


class Files:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.server_ca, self.gateway_ca = trustme.CA(), trustme.CA()
        self.cert, self.key = write_pair(root, self.server_ca, "server")
        (root / "gateways.pem").write_bytes(self.gateway_ca.cert_pem.bytes())
        self.gateway = write_pair(root, self.gateway_ca, "gateway")

    def channel(self, port: int, ca: trustme.CA, client: bool = True) -> object:
        credentials = grpc.ssl_channel_credentials(
            root_certificates=ca.cert_pem.bytes(),
            private_key=self.gateway[1].read_bytes() if client else None,
            certificate_chain=self.gateway[0].read_bytes() if client else None,
        )
        options = [("grpc.ssl_target_name_override", "localhost")]
        return grpc.secure_channel(f"127.0.0.1:{port}", credentials, options=options)


def serving(channel: object) -> bool:
    health = health_pb2_grpc.HealthStub(channel)
    try:
        answer = health.Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
    except grpc.RpcError:
        return False
    finally:
        channel.close()  # type: ignore[attr-defined]
    return bool(answer.status == health_pb2.HealthCheckResponse.SERVING)


@pytest.fixture
def grpc_over_tls(tmp_path: Path) -> Iterator[tuple[int, Files]]:
    files = Files(tmp_path)
    tls = TlsFiles(files.cert, files.key, tmp_path / "gateways.pem")
    config = make_config(write_policy(tmp_path / "policy"), grpc_port=0, tls=tls)
    with ServerThread(config) as running:
        assert running.worker is not None and running.worker.grpc is not None
        yield running.worker.grpc.port, files


def test_a_renewed_certificate_serves_the_next_grpc_handshake(
    grpc_over_tls: tuple[int, Files], tmp_path: Path
) -> None:
    port, files = grpc_over_tls
    assert serving(files.channel(port, files.server_ca))
    renewed_ca = trustme.CA()  # a certificate only the new CA vouches for
    (tmp_path / "renewed").mkdir()
    cert, key = write_pair(tmp_path / "renewed", renewed_ca, "server")
    os.replace(key, files.key)
    os.replace(cert, files.cert)
    assert serving(files.channel(port, renewed_ca))
    assert not serving(files.channel(port, files.server_ca))
