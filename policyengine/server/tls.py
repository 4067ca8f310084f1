"""TLS on the sidecar's port: TLS 1.2 and newer, client certificates (mTLS) on request,
certificates reloaded when their files change.

asyncio keeps the context a server was created with, so the listening context only
hands each handshake over (in its SNI callback, which OpenSSL calls for every
ClientHello, with or without a server name) to the newest context that loaded
cleanly. A renewed certificate serves the next handshake; connections already open
keep theirs; a file that does not load leaves the previous context in service.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("policyengine.server")
Marks = tuple[tuple[int, int] | None, ...]


class TlsError(Exception):
    """A certificate, key or CA file that cannot serve: named, never a traceback."""

    code = "tls/bad-files"


@dataclass(frozen=True, slots=True)
class TlsFiles:
    cert: Path  # PEM: the server certificate, then its intermediates
    key: Path  # PEM: its private key
    client_ca: Path | None = None  # PEM: the CAs a client certificate must chain to (mTLS)

    @property
    def paths(self) -> tuple[Path, ...]:
        return (
            (self.cert, self.key)
            if self.client_ca is None
            else (self.cert, self.key, self.client_ca)
        )

    def marks(self) -> Marks:
        """(size, mtime) of each file: what tells a renewal apart."""
        found: list[tuple[int, int] | None] = []
        for path in self.paths:
            try:
                stat = path.stat()
            except OSError:
                found.append(None)
            else:
                found.append((stat.st_size, stat.st_mtime_ns))
        return tuple(found)


def server_context(files: TlsFiles) -> ssl.SSLContext:
    """A server context for `files`; raises TlsError naming the file that does not load."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.options |= ssl.OP_NO_RENEGOTIATION | ssl.OP_CIPHER_SERVER_PREFERENCE
    context.set_alpn_protocols(["http/1.1"])
    try:
        context.load_cert_chain(files.cert, files.key)
    except (OSError, ssl.SSLError) as err:
        raise TlsError(
            f"cannot load the certificate `{files.cert}` with the key `{files.key}`: {_reason(err)}"
        ) from None
    if files.client_ca is not None:
        try:
            context.load_verify_locations(cafile=files.client_ca)
        except (OSError, ssl.SSLError) as err:
            raise TlsError(
                f"cannot load the client CA `{files.client_ca}`: {_reason(err)}"
            ) from None
        context.verify_mode = ssl.CERT_REQUIRED  # no certificate from that CA: no handshake
    return context


def _reason(err: OSError | ssl.SSLError) -> str:
    if isinstance(err, ssl.SSLError):
        return str(err.reason or err).lower().replace("_", " ")
    return (err.strerror or str(err)).lower()


class TlsContexts:
    """The listening context and the context it hands every handshake to."""

    def __init__(self, files: TlsFiles) -> None:
        self.files = files
        self._marks = files.marks()
        self.current = server_context(files)
        self.listener = server_context(files)
        self.listener.sni_callback = self._select
        self._poller: asyncio.Task[None] | None = None

    def _select(self, connection: Any, server_name: str | None, context: ssl.SSLContext) -> None:
        connection.context = self.current

    def check(self) -> bool:
        """Load the files again if they changed; True when a new context serves."""
        marks = self.files.marks()
        if marks == self._marks:
            return False
        self._marks = marks
        try:
            self.current = server_context(self.files)
        except TlsError as err:
            log.error("error[tls/reload-failed]: %s; still serving the previous certificate", err)
            return False
        log.info("tls certificate reloaded from `%s`", self.files.cert)
        return True

    def start(self, interval: float) -> None:
        if interval > 0:
            self._poller = asyncio.get_running_loop().create_task(self._poll(interval))

    def stop(self) -> None:
        if self._poller is not None:
            self._poller.cancel()

    async def _poll(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            self.check()


def grpc_server_credentials(files: TlsFiles) -> Any:
    """The same files as `grpc.ServerCredentials` for a gRPC port, reloaded the same way:
    grpc asks for the configuration on each handshake and keeps the last one given."""
    import grpc  # type: ignore[import-untyped, unused-ignore]  # only the gRPC port needs it

    def load() -> Any:
        server_context(files)  # the same checks, the same named error
        chain = files.cert.read_bytes()
        key = files.key.read_bytes()
        ca = files.client_ca.read_bytes() if files.client_ca is not None else None
        return grpc.ssl_server_certificate_configuration([(key, chain)], root_certificates=ca)

    seen = [files.marks()]

    def fetch() -> Any:
        marks = files.marks()
        if marks == seen[0]:
            return None  # unchanged: grpc keeps the current configuration
        seen[0] = marks
        try:
            return load()
        except (TlsError, OSError) as err:
            log.error("error[tls/reload-failed]: %s; still serving the previous certificate", err)
            return None

    return grpc.dynamic_ssl_server_credentials(
        load(), fetch, require_client_authentication=files.client_ca is not None
    )
