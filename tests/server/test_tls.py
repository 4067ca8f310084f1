"""The sidecar over HTTPS: TLS 1.2+, mTLS, certificates reloaded when their files change."""

from __future__ import annotations

import http.client
import logging
import os
import socket
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme
from server_support import ServerThread, forward_auth, free_port, make_config, wait_for_port

from policyengine.server.tls import TlsContexts, TlsError, TlsFiles, server_context

PUBLIC = forward_auth("GET", "/api/public")


def write_cert(directory: Path, ca: trustme.CA, name: str = "server") -> tuple[Path, Path]:
    cert = ca.issue_cert("127.0.0.1", "localhost", common_name=name)
    cert_file, key_file = directory / f"{name}.pem", directory / f"{name}.key"
    cert.private_key_pem.write_to_path(str(key_file))
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    for extra in cert.cert_chain_pems[1:]:
        extra.write_to_path(str(cert_file), append=True)
    return cert_file, key_file


@pytest.fixture
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def tls_files(tmp_path: Path, ca: trustme.CA) -> TlsFiles:
    cert, key = write_cert(tmp_path, ca)
    return TlsFiles(cert, key)


def client_context(ca: trustme.CA, client: trustme.LeafCert | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    if client is not None:
        client.configure_cert(context)
    return context


def https(
    port: int, context: ssl.SSLContext, path: str, headers: dict[str, str] | None = None
) -> tuple[int, bytes, dict[str, str] | None]:
    """Status, body and the server certificate's subject of one HTTPS request."""
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=10)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        assert conn.sock is not None
        peer = conn.sock.getpeercert()
        subject = {k: v for rdn in peer["subject"] for k, v in rdn} if peer else None
        return response.status, response.read(), subject
    finally:
        conn.close()


def handshake_fails(port: int, context: ssl.SSLContext) -> bool:
    """True when the server ends the handshake (or the first read) with an error."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        try:
            with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
                # TLS 1.3 reports a refused client certificate after the handshake
                tls.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                return tls.recv(1024) == b""
        except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
            return True


@pytest.fixture
def https_server(policy_dir: Path, tls_files: TlsFiles) -> Iterator[ServerThread]:
    with ServerThread(make_config(policy_dir, tls=tls_files)) as running:
        yield running


def test_decisions_and_healthz_are_served_over_https(
    https_server: ServerThread, ca: trustme.CA
) -> None:
    context = client_context(ca)
    status, _, subject = https(https_server.port, context, "/healthz")
    assert status == 200
    assert subject is not None and subject["commonName"] == "server"
    assert https(https_server.port, context, "/v1/forward-auth", PUBLIC)[0] == 200
    denied = https(https_server.port, context, "/v1/forward-auth", forward_auth("GET", "/api/x"))
    assert denied[0] == 403  # no route: denied, as over plain HTTP


def test_plaintext_http_gets_no_decision(https_server: ServerThread) -> None:
    with socket.create_connection(("127.0.0.1", https_server.port), timeout=5) as sock:
        sock.sendall(
            b"GET /v1/forward-auth HTTP/1.1\r\nHost: x\r\nX-Original-URI: /api/public\r\n\r\n"
        )
        answer = sock.recv(1024)
    assert b"HTTP/1.1 200" not in answer


def test_tls_1_1_is_refused(https_server: ServerThread, ca: trustme.CA) -> None:
    def client(version: ssl.TLSVersion) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ca.configure_trust(context)
        context.set_ciphers("DEFAULT:@SECLEVEL=0")  # let the client offer TLS 1.1 at all
        context.minimum_version = context.maximum_version = version
        return context

    with pytest.warns(DeprecationWarning):  # as it should
        old = client(ssl.TLSVersion.TLSv1_1)
    assert handshake_fails(https_server.port, old)
    # the same client, one version up: only the version was refused
    assert https(https_server.port, client(ssl.TLSVersion.TLSv1_2), "/healthz")[0] == 200


def test_mtls_admits_only_clients_with_a_certificate_from_the_client_ca(
    policy_dir: Path, tls_files: TlsFiles, ca: trustme.CA, tmp_path: Path
) -> None:
    gateways = trustme.CA()
    (tmp_path / "gateways.pem").write_bytes(gateways.cert_pem.bytes())
    files = TlsFiles(tls_files.cert, tls_files.key, tmp_path / "gateways.pem")
    with ServerThread(make_config(policy_dir, tls=files)) as server:
        gateway = gateways.issue_cert("gateway.internal")
        assert https(server.port, client_context(ca, gateway), "/v1/forward-auth", PUBLIC)[0] == 200
        assert handshake_fails(server.port, client_context(ca))
        stranger = trustme.CA().issue_cert("gateway.internal")
        assert handshake_fails(server.port, client_context(ca, stranger))
        # a certificate from the server's own CA is not a gateway's either
        assert handshake_fails(server.port, client_context(ca, ca.issue_cert("x.internal")))


def test_a_renewed_certificate_serves_the_next_handshake(
    https_server: ServerThread, tls_files: TlsFiles, ca: trustme.CA, tmp_path: Path
) -> None:
    context = client_context(ca)
    assert (https(https_server.port, context, "/healthz")[2] or {})["commonName"] == "server"
    renew(tls_files, ca, tmp_path)
    worker = https_server.worker
    assert worker is not None and worker.tls is not None
    assert https_server.call(_check(worker.tls))
    assert (https(https_server.port, context, "/healthz")[2] or {})["commonName"] == "renewed"


def renew(files: TlsFiles, ca: trustme.CA, tmp_path: Path) -> None:
    """What cert-manager does: new files moved over the old ones."""
    (tmp_path / "renewed").mkdir()
    cert, key = write_cert(tmp_path / "renewed", ca, "renewed")
    os.replace(key, files.key)
    os.replace(cert, files.cert)


async def _check(tls: TlsContexts) -> bool:
    return tls.check()


def test_a_bad_renewal_keeps_the_previous_certificate(
    tls_files: TlsFiles, caplog: pytest.LogCaptureFixture
) -> None:
    contexts = TlsContexts(tls_files)
    before = contexts.current
    tls_files.key.write_text("-----BEGIN PRIVATE KEY-----\nbroken\n-----END PRIVATE KEY-----\n")
    with caplog.at_level(logging.ERROR, logger="policyengine.server"):
        assert not contexts.check()
    assert contexts.current is before
    assert "tls/reload-failed" in caplog.text
    assert "broken" not in caplog.text  # the key's bytes are never logged


def test_files_that_do_not_load_are_named(tls_files: TlsFiles, tmp_path: Path) -> None:
    other_key = tmp_path / "other.key"
    trustme.CA().issue_cert("x").private_key_pem.write_to_path(str(other_key))
    with pytest.raises(TlsError, match=r"server\.pem"):
        server_context(TlsFiles(tls_files.cert, other_key))
    (tmp_path / "ca.pem").write_text("not a certificate")
    with pytest.raises(TlsError, match=r"ca\.pem"):
        server_context(TlsFiles(tls_files.cert, tls_files.key, tmp_path / "ca.pem"))


def test_serve_over_https_with_workers_and_a_polled_renewal(
    policy_dir: Path, tls_files: TlsFiles, ca: trustme.CA, tmp_path: Path
) -> None:
    port = free_port()
    command = [
        sys.executable, "-m", "policyengine", "serve", str(policy_dir), "--port", str(port),
        "--workers", "2", "--reload-interval", "0.2",
        "--tls-cert", str(tls_files.cert), "--tls-key", str(tls_files.key),
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, process=process)
        context = client_context(ca)
        for _ in range(4):
            assert https(port, context, "/v1/forward-auth", PUBLIC)[0] == 200
        assert https(port, context, "/readyz")[0] == 200
        renew(tls_files, ca, tmp_path)
        # each worker polls on its own: wait until a run of handshakes sees only the new one
        recent: list[str] = []
        for _ in range(500):
            recent = [*recent[-9:], (https(port, context, "/healthz")[2] or {})["commonName"]]
            if recent == ["renewed"] * 10:
                break
        assert recent == ["renewed"] * 10
    finally:
        process.terminate()
        process.wait(15)


def test_serve_refuses_half_a_tls_configuration(policy_dir: Path, tls_files: TlsFiles) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "policyengine", "serve", str(policy_dir), "--tls-cert",
         str(tls_files.cert)],
        capture_output=True,
        timeout=30,
    )  # fmt: skip
    assert run.returncode == 2 and b"--tls-key" in run.stderr
