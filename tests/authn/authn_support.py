"""Real keys, real tokens and a real local IdP (JWKS + RFC 7662 introspection) for tests."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from policyengine import Engine, Request
from policyengine.decision import Decision

NOW = 1_800_000_000  # the fixed clock of every engine in these tests
ISSUER = "https://idp.example.test"
AUDIENCE = "orders-api"
HS_SECRET = "s" * 64  # long enough for HS512


@dataclass(frozen=True)
class SigningKey:
    private: Any
    kid: str

    @property
    def public(self) -> Any:
        return self.private.public_key()

    def pem(self) -> bytes:
        return self.public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def jwk(self, alg: str | None = None) -> dict[str, Any]:
        algorithm = jwt.get_algorithm_by_name(
            alg or {"RSA": "RS256", "EC": "ES256", "OKP": "EdDSA"}[self.kty()]
        )
        data: dict[str, Any] = json.loads(algorithm.to_jwk(self.public))
        data["kid"] = self.kid
        if alg:
            data["alg"] = alg
        return data

    def kty(self) -> str:
        if isinstance(self.private, rsa.RSAPrivateKey):
            return "RSA"
        return "EC" if isinstance(self.private, ec.EllipticCurvePrivateKey) else "OKP"


def rsa_key(kid: str = "rsa-1", bits: int = 2048) -> SigningKey:
    return SigningKey(rsa.generate_private_key(public_exponent=65537, key_size=bits), kid)


def ec_key(curve: ec.EllipticCurve, kid: str) -> SigningKey:
    return SigningKey(ec.generate_private_key(curve), kid)


def ed25519_key(kid: str = "ed-1") -> SigningKey:
    return SigningKey(ed25519.Ed25519PrivateKey.generate(), kid)


def claims(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "alice",
        "iat": NOW - 10,
        "exp": NOW + 300,
        "roles": ["user"],
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def sign(
    key: SigningKey | str,
    alg: str,
    payload: dict[str, Any] | None = None,
    headers: dict[str, Any] | None = None,
    kid: bool = True,
) -> str:
    if isinstance(key, str):
        return jwt.encode(payload or claims(), key, algorithm=alg, headers=headers)
    extra = {"kid": key.kid} if kid else {}
    return jwt.encode(
        payload or claims(), key.private, algorithm=alg, headers={**extra, **(headers or {})}
    )


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def forge(header: dict[str, Any], payload: dict[str, Any], signature: bytes = b"") -> str:
    """A token assembled by hand, as an attacker would."""
    return ".".join(
        [b64(json.dumps(header).encode()), b64(json.dumps(payload).encode()), b64(signature)]
    )


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def decide(
    engine: Engine, headers: dict[str, str], path: str = "/orders", method: str = "GET"
) -> Decision:
    return engine.decide(Request(method, path, headers))


def write(directory: Path, name: str, data: bytes | str) -> str:
    path = directory / name
    path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    return name


# -- a local IdP ------------------------------------------------------------------------------


@dataclass
class IdP:
    """What the local server answers; tests change it between requests."""

    jwks: dict[str, Any] = field(default_factory=lambda: {"keys": []})
    cache_control: str | None = "max-age=300"
    jwks_status: int = 200
    answers: dict[str, Any] = field(default_factory=dict)  # token -> answer (bytes: sent as is)
    client_id: str = "gateway"
    client_secret: str = "introspect-secret"
    delay: float = 0.0
    introspect_status: int = 200
    hits: dict[str, int] = field(default_factory=lambda: {"jwks": 0, "introspect": 0})
    seen_tokens: list[str] = field(default_factory=list)
    base_url: str = ""

    def expected_authorization(self) -> str:
        raw = f"{self.client_id}:{self.client_secret}".encode()
        return "Basic " + base64.b64encode(raw).decode("ascii")


def _handler(idp: IdP) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _send(self, status: int, body: Any, cache_control: str | None = None) -> None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()  # bytes: raw
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                if cache_control:
                    self.send_header("Cache-Control", cache_control)
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client timed out and left: what the timeout tests want

        def do_GET(self) -> None:
            if self.path == "/moved":  # a redirect that must not be followed
                self.send_response(302)
                self.send_header("Location", f"{idp.base_url}/jwks")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if self.path != "/jwks":
                self._send(404, {})
                return
            idp.hits["jwks"] += 1
            if idp.delay:
                time.sleep(idp.delay)
            self._send(idp.jwks_status, idp.jwks, idp.cache_control)

        def do_POST(self) -> None:
            if self.path != "/introspect":
                self._send(404, {})
                return
            idp.hits["introspect"] += 1
            length = int(self.headers.get("Content-Length", "0"))
            form = parse_qs(self.rfile.read(length).decode("ascii"))
            if idp.delay:
                time.sleep(idp.delay)
            if self.headers.get("Authorization") != idp.expected_authorization():
                self._send(401, {"error": "invalid_client"})
                return
            if self.headers.get("Content-Type") != "application/x-www-form-urlencoded":
                self._send(400, {"error": "invalid_request"})
                return
            token = form.get("token", [""])[0]
            idp.seen_tokens.append(token)
            answer = idp.answers.get(token, {"active": False})
            self._send(idp.introspect_status, answer)

    return Handler


@contextmanager
def running_idp() -> Iterator[IdP]:
    idp = IdP()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(idp))
    server.daemon_threads = True
    idp.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield idp
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
