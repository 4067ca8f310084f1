"""What `policyengine serve` was asked to do: one frozen value shared by every part."""

from __future__ import annotations

import importlib.util
import re
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

from policyengine.inputs import MissingBody
from policyengine.ratelimit.connect import parse_store_url
from policyengine.server.clientip import TrustedProxies
from policyengine.server.reuse import DEFAULT_ENTRIES
from policyengine.server.tls import TlsFiles

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on what one client may cost the server."""

    max_header_bytes: int = 32 * 1024  # request line and headers; JWTs and cookies fit
    max_headers: int = 100
    max_body_bytes: int = 1024 * 1024  # /v1/decide and /v1/envoy bodies
    request_timeout: float = 10.0  # first byte to last byte of one request (slowloris)
    idle_timeout: float = 300.0  # keep-alive; longer than the gateways' upstream idle timeouts
    drain_timeout: float = 10.0  # SIGTERM: how long in-flight requests may take to finish
    max_pipelined: int = 32  # requests queued on one connection before reading pauses


@dataclass(frozen=True, slots=True)
class StoreOptions:
    """How the Redis store behaves when it is slow or down (README, "Redis store")."""

    timeout_ms: int = 100  # a check's whole wait
    on_store_error: str = "deny"  # deny (503), allow, or local (count in memory)
    recovery_ms: int = 1000  # Redis left alone this long after a failure
    ca_file: str | None = None  # the CA that signed a rediss:// server's certificate


@dataclass(frozen=True, slots=True)
class DecisionLogConfig:
    target: str  # a file path, or "-" for stdout
    sample: float = 1.0  # the share of allowed decisions written; denies are always written
    log_format: str = "json"  # json (our own shape) or ecs (decisionlog.LogFormat)


@dataclass(frozen=True, slots=True)
class BundleConfig:
    """`serve --bundle`: where signed bundles come from and how often to ask."""

    location: str  # a file path, or an http(s) URL (asked with If-None-Match)
    public_key: Path  # PEM, Ed25519 or P-256: a bundle not signed by it is refused
    poll: float = 30.0  # seconds between fetches


@dataclass(frozen=True, slots=True)
class ServerConfig:
    policy_dir: Path
    host: str = "127.0.0.1"
    port: int = 8181
    grpc_port: int | None = None  # Envoy ext_authz over gRPC as well (server.envoy_grpc)
    workers: int = 1
    redis_url: str | None = None  # may hold a password: never logged
    store: StoreOptions = field(default_factory=StoreOptions)
    trusted_proxies: TrustedProxies = field(default_factory=TrustedProxies)
    nginx_mode: bool = False
    subject_header: str = "X-Auth-Subject"
    roles_header: str = "X-Auth-Roles"
    # a route with `body` when the gateway forwarded none (nginx, Caddy, Traefik's default)
    on_missing_body: MissingBody = MissingBody.DENY
    decision_log: DecisionLogConfig | None = None
    otlp_endpoint: str | None = None  # OTLP/HTTP traces URL: a span per decision (`otel` extra)
    decision_cache: int = DEFAULT_ENTRIES  # reusable decisions kept per worker; 0: none
    reload_interval: float = 1.0  # seconds between polls of the policy files; 0 turns it off
    limits: Limits = field(default_factory=Limits)
    tls: TlsFiles | None = None  # HTTPS (and mTLS with a client CA) on the port
    bundle: BundleConfig | None = None  # policies from signed bundles, polled
    revision: str | None = None  # the bundle revision policy_dir was unpacked from, if any

    def __post_init__(self) -> None:
        for name in (self.subject_header, self.roles_header):
            if not _TOKEN.fullmatch(name):
                raise ValueError(f"`{name}` is not a valid header name")
        if self.redis_url is not None:
            try:
                parse_store_url(self.redis_url, ca_file=self.store.ca_file)
            except ValueError as err:
                raise ValueError(f"--redis: {err}") from None
        elif self.store.ca_file is not None:
            raise ValueError("--redis-ca-file needs a rediss:// --redis URL")
        if self.otlp_endpoint is not None:
            _check_otlp_endpoint(self.otlp_endpoint)
        if self.decision_cache < 0:
            raise ValueError("--decision-cache must be 0 (off) or more")
        if self.bundle is not None and self.bundle.poll <= 0:
            raise ValueError("--bundle-poll must be more than 0s")
        if self.workers < 1:
            raise ValueError("--workers must be at least 1")
        if not 0.0 <= (self.decision_log.sample if self.decision_log else 1.0) <= 1.0:
            raise ValueError("the decision log sample rate must be between 0 and 1")

    @property
    def identity_headers(self) -> tuple[str, str]:
        return self.subject_header, self.roles_header


def _check_otlp_endpoint(url: str) -> None:
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise ValueError("--otlp-endpoint must be an http:// or https:// URL")
    if importlib.util.find_spec("opentelemetry.sdk") is None:
        raise ValueError("--otlp-endpoint needs the `otel` extra: pip install 'policyengine[otel]'")
