"""The adversarial corpus's policy, keys and tokens, and the two faces cases run through.

Every case is decided twice: by `Engine.decide` in this process and by a real
`policyengine serve` subprocess through `/v1/forward-auth`, the way nginx asks it
(X-Original-Method / X-Original-URI), over a socket. The server trusts 127.0.0.1 as
its proxy, so the case's client address travels in X-Forwarded-For; connections from
127.0.0.2 are an untrusted client's.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from server_support import free_port, wait_for_port

from policyengine import Engine, Request
from policyengine.decision import Decision

ISSUER = "https://idp.security.test"
AUDIENCE = "corpus"
HS_SECRET = "corpus-hs256-secret-" + "x" * 44  # 64 bytes: long enough for HS256
SECRET_ENV = "CORPUS_HS_SECRET"
TRUSTED_PEER = "127.0.0.1"  # the gateway: its X-Forwarded-For is believed
UNTRUSTED_PEER = "127.0.0.2"  # a client talking to the sidecar directly
CLIENT = "203.0.113.7"  # the default client address of a case (TEST-NET-3)

# The plaintext keys exist only here, as clients send them; keys.yaml holds their sha256.
KEYS = {
    "key-alice": ("alice", ["user"], {"tenant": "acme"}, None),
    "key-ops": ("ops", ["admin"], {}, None),
    "key-old": ("old-job", ["user"], {}, "2020-01-01"),
}

POLICY = """\
policy "security-corpus"

authn api_key keys {
    header "X-API-Key"
    keys file "keys.yaml"
}

authn jwt tokens {
    issuer "https://idp.security.test"
    audience "corpus"
    algorithms RS256, HS256
    public_key file "rs256.pub.pem"
    secret env "CORPUS_HS_SECRET"
    subject claim "sub"
    roles claim "roles"
}

role user
role admin inherits user

schema Order {
    productId: string matching "^[A-Z0-9]{8}$"
    quantity: int 1..100
}

schema Doc {
    title?: string
    ...
}

limit per_ip 3 per minute by client_ip
limit per_key 3 per minute by api_key

route GET /public {
    allow anyone
}

route GET /api/me {
    allow authenticated
}

route GET /api/reports {
    allow role user scope "reports:read"
}

route GET /api/items/{id:int} {
    allow role user
}

route DELETE /api/items/{id:int} {
    allow role admin
}

route ANY /api/admin/** {
    allow role admin
}

route POST /api/orders {
    allow role user
    body Order max 1KiB
}

route POST /api/docs {
    allow role user
    body Doc
}

route POST /api/kinds {
    allow role user when body.kind == "public"
}

route GET /tenants/{tenant}/data {
    allow role user when claims.tenant == path.tenant
    allow role admin
}

route GET /internal {
    allow anyone
    deny when not (client_ip in 10.0.0.0/8)
}

route GET /limited {
    allow anyone
    limit per_ip
}

route GET /limited-key {
    allow authenticated
    limit per_key
}
"""


# -- policy files and credentials ---------------------------------------------------------


@dataclass(frozen=True)
class Credentials:
    """The private half of the policy's RS256 key: tokens are signed with it per case."""

    private_key: rsa.RSAPrivateKey

    def token(self, alg: str = "RS256", **changes: Any) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": "tina",
            "roles": ["user"],
            "iat": now,
            "exp": now + 3600,
        }
        for name, value in changes.items():
            if value is None:
                claims.pop(name, None)
            else:
                claims[name] = value
        key: Any = self.private_key if alg == "RS256" else HS_SECRET.encode()
        return jwt.encode(claims, key, algorithm=alg)


def write_corpus_policy(directory: Path) -> Credentials:
    directory.mkdir(parents=True, exist_ok=True)
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    (directory / "rs256.pub.pem").write_bytes(pem)
    lines = ["keys:"]
    for key, (subject, roles, claims, expires) in KEYS.items():
        lines += [
            f'  - sha256: "{hashlib.sha256(key.encode()).hexdigest()}"',
            f"    subject: {subject}",
            f"    roles: [{', '.join(roles)}]",
            f"    claims: {json.dumps(claims)}",
        ]
        if expires:
            lines.append(f"    expires: {expires}")
    (directory / "keys.yaml").write_text("\n".join(lines) + "\n")
    (directory / "corpus.policy").write_text(POLICY)
    return Credentials(private_key)


# -- cases --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One adversarial request and the decision it must get; `why` says what it proves."""

    name: str
    method: str
    target: str
    status: int
    reason: str
    why: str
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes | None = None
    client_ip: str = CLIENT
    subject: str | None = None  # the identity the decision must carry (None: anonymous)
    http_status: int | None = None  # when the HTTP layer answers before the engine
    http_reason: str | None = None
    engine_only: bool = False  # not expressible in HTTP/1.1 (e.g. a raw non-Latin-1 URI)

    def request(self) -> Request:
        return Request(self.method, self.target, dict(self.headers), self.body, self.client_ip)


@dataclass(frozen=True)
class Outcome:
    status: int
    reason: str
    subject: str | None
    upstream: Mapping[str, str] = field(default_factory=dict)


def outcome_of(decision: Decision) -> Outcome:
    return Outcome(
        decision.status, decision.reason.value, decision.subject, decision.upstream_headers
    )


def expected(case: Case, *, over_http: bool) -> Outcome:
    if over_http and case.http_status is not None:
        return Outcome(case.http_status, case.http_reason or case.reason, None)
    return Outcome(case.status, case.reason, case.subject if case.status == 200 else None)


def differences(case: Case, got: Outcome, *, over_http: bool) -> list[str]:
    want = expected(case, over_http=over_http)
    found = []
    if (got.status, got.reason) != (want.status, want.reason):
        found.append(f"expected {want.status} {want.reason}, got {got.status} {got.reason}")
    if want.status == 200 and got.subject != want.subject:
        found.append(f"expected subject {want.subject!r}, got {got.subject!r}")
    return found


def decide(engine: Engine, case: Case) -> Outcome:
    return outcome_of(engine.decide(case.request()))


# -- the HTTP face ------------------------------------------------------------------------


@contextmanager
def running_server(policy_dir: Path, log: Path) -> Iterator[int]:
    """`policyengine serve` as an operator runs it, trusting 127.0.0.1 as its gateway."""
    port = free_port()
    command = [
        sys.executable, "-m", "policyengine", "serve", str(policy_dir), "--port", str(port),
        "--trusted-proxy", f"{TRUSTED_PEER}/32", "--reload-interval", "0",
    ]  # fmt: skip
    env = {**os.environ, SECRET_ENV: HS_SECRET}
    with log.open("wb") as stderr:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr, env=env)
        try:
            try:
                wait_for_port(port, timeout=30, process=process)
            except (RuntimeError, TimeoutError) as err:
                raise RuntimeError(f"{err}; its log:\n{log.read_text()}") from None
            yield port
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@dataclass(frozen=True)
class Reply:
    status: int
    headers: Mapping[str, str]
    body: bytes

    def reason(self) -> str:
        if self.status == 200 and not self.body:
            return "allow"
        return str(json.loads(self.body)["reason"])


def send(
    port: int,
    method: str,
    path: str,
    headers: tuple[tuple[str, str], ...] = (),
    body: bytes | None = None,
    *,
    source: str = TRUSTED_PEER,
) -> Reply:
    """One request on its own connection; header values go out byte for byte (Latin-1)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10,
                                            source_address=(source, 0))  # fmt: skip
    try:
        connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        connection.putheader("Host", "sidecar")
        for name, value in headers:
            connection.putheader(name, value.encode("latin-1"))
        if body is not None:
            connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        response = connection.getresponse()
        return Reply(response.status, {k.lower(): v for k, v in response.getheaders()},
                     response.read())  # fmt: skip
    finally:
        connection.close()


def forward_auth(port: int, case: Case, *, source: str = TRUSTED_PEER) -> Reply:
    """The request nginx's auth_request makes for the case's original request."""
    headers = (
        ("X-Original-Method", case.method),
        ("X-Original-URI", case.target),
        ("X-Forwarded-For", case.client_ip),
        *case.headers,
    )
    return send(port, "GET", "/v1/forward-auth", headers, case.body, source=source)


def http_outcome(reply: Reply) -> Outcome:
    subject = reply.headers.get("x-auth-subject") or None
    return Outcome(reply.status, reply.reason(), subject)
