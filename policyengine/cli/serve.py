"""`policyengine serve`: the sidecar decision server."""

from __future__ import annotations

import importlib.util
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from policyengine.errors import PolicyError

if TYPE_CHECKING:
    from policyengine.server.config import BundleConfig
    from policyengine.server.tls import TlsFiles

EXIT_USAGE = 2


@click.command()
@click.argument("directory", required=False, type=click.Path(exists=True, path_type=Path))
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8181, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--grpc-port",
    type=click.IntRange(0, 65535),
    metavar="PORT",
    help="Also serve Envoy's ext_authz over gRPC (envoy.service.auth.v3.Authorization/"
    "Check, and grpc.health.v1) on this port. Needs the `grpc` extra.",
)
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 256),
    help="Processes sharing the port (SO_REUSEPORT).",
)
@click.option(
    "--redis",
    "redis_url",
    metavar="URL",
    help="Rate-limit store shared by workers and replicas: redis://, rediss:// (TLS), "
    "unix://, redis+cluster://h:p[,h:p...], rediss+cluster://, "
    "redis+sentinel://h:p[,h:p...]/service[/db]. Without it counts are kept per process.",
)
@click.option(
    "--redis-ca-file",
    type=click.Path(exists=True, dir_okay=False),
    metavar="FILE",
    help="CA certificates (PEM) that sign a rediss:// store's certificate; default: the "
    "system's. The certificate and host name are always verified.",
)
@click.option(
    "--redis-timeout-ms",
    default=100,
    show_default=True,
    type=click.IntRange(1),
    help="How long a rate-limit check may wait for Redis, queue included.",
)
@click.option(
    "--redis-on-error",
    type=click.Choice(["deny", "allow", "local"]),
    default="deny",
    show_default=True,
    help="When Redis does not answer: deny (503 ratelimit.unavailable), allow, or count "
    "in this process's memory until it is back.",
)
@click.option(
    "--redis-recovery-ms",
    default=1000,
    show_default=True,
    type=click.IntRange(0),
    help="How long Redis is left alone after a failure before it is asked again.",
)
@click.option(
    "--trusted-proxy",
    "trusted_proxies",
    multiple=True,
    metavar="CIDR",
    help="A gateway address whose X-Forwarded-For / X-Real-IP is believed. Repeatable.",
)
@click.option(
    "--nginx-mode",
    is_flag=True,
    help="Deny with 401/403 only, the real status in X-Policy-Status "
    "(nginx auth_request honours no other).",
)
@click.option("--decision-log", metavar="FILE|-", help="Write one JSON line per decision.")
@click.option(
    "--decision-log-sample",
    default=1.0,
    show_default=True,
    type=click.FloatRange(0.0, 1.0),
    help="Share of allowed decisions logged; denies are always logged.",
)
@click.option(
    "--decision-log-format",
    default="json",
    show_default=True,
    type=click.Choice(["json", "ecs"]),
    help="json: our own fields; ecs: the Elastic Common Schema, with the W3C trace id.",
)
@click.option(
    "--otlp-endpoint",
    metavar="URL",
    help="Export a span per decision over OTLP/HTTP to this traces URL "
    "(e.g. http://collector:4318/v1/traces; needs the `otel` extra).",
)
@click.option("--subject-header", default="X-Auth-Subject", show_default=True)
@click.option("--roles-header", default="X-Auth-Roles", show_default=True)
@click.option(
    "--max-body",
    default=1024 * 1024,
    show_default=True,
    type=click.IntRange(0),
    help="Largest request body accepted, in bytes (/v1/decide, /v1/envoy).",
)
@click.option(
    "--request-timeout",
    default=10.0,
    show_default=True,
    type=click.FloatRange(0.1),
    help="Seconds a client may take to send one request.",
)
@click.option(
    "--idle-timeout",
    default=300.0,
    show_default=True,
    type=click.FloatRange(0.1),
    help="Seconds an idle keep-alive connection is kept.",
)
@click.option(
    "--reload-interval",
    default=1.0,
    show_default=True,
    type=click.FloatRange(0.0),
    help="Seconds between checks of the policy files for changes; 0: SIGHUP only.",
)
@click.option(
    "--on-missing-body",
    type=click.Choice(["deny", "skip"]),
    default="deny",
    show_default=True,
    help="A route with `body` when the gateway forwarded no body: deny (400), or skip the "
    "body check (authorization still applies). nginx, Caddy and Traefik send no body.",
)
@click.option(
    "--decision-cache",
    default=10_000,
    show_default=True,
    type=click.IntRange(0),
    help="Reusable decisions kept per worker, answered again for requests that agree in "
    "everything the policy reads (at most 10 s, never past the credential's expiry); 0: off.",
)
@click.option(
    "--tls-cert",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    metavar="FILE",
    help="Serve HTTPS (TLS 1.2+) with this certificate chain (PEM); reloaded when it changes.",
)
@click.option(
    "--tls-key",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    metavar="FILE",
    help="The private key (PEM) of --tls-cert.",
)
@click.option(
    "--tls-client-ca",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    metavar="FILE",
    help="mTLS: only clients with a certificate from these CAs (PEM) complete the handshake.",
)
@click.option(
    "--bundle",
    "bundle_location",
    metavar="URL|FILE",
    help="Serve the policy of a signed bundle (`policyengine bundle build`) instead of "
    "DIRECTORY, polled for new revisions: an http(s) URL (If-None-Match) or a file.",
)
@click.option(
    "--bundle-public-key",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    metavar="KEY",
    help="The Ed25519 or P-256 public key (PEM) bundles must be signed with.",
)
@click.option(
    "--bundle-poll",
    default="30s",
    show_default=True,
    metavar="DURATION",
    help="How often the bundle is fetched: `30s`, `5m`, or seconds.",
)
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["debug", "info", "warning", "error"]),
)
def serve(
    directory: Path,
    host: str,
    port: int,
    grpc_port: int | None,
    workers: int,
    redis_url: str | None,
    redis_ca_file: str | None,
    redis_timeout_ms: int,
    redis_on_error: str,
    redis_recovery_ms: int,
    trusted_proxies: tuple[str, ...],
    nginx_mode: bool,
    decision_log: str | None,
    decision_log_sample: float,
    decision_log_format: str,
    otlp_endpoint: str | None,
    subject_header: str,
    roles_header: str,
    max_body: int,
    request_timeout: float,
    idle_timeout: float,
    reload_interval: float,
    on_missing_body: str,
    decision_cache: int,
    tls_cert: Path | None,
    tls_key: Path | None,
    tls_client_ca: Path | None,
    bundle_location: str | None,
    bundle_public_key: Path | None,
    bundle_poll: str,
    log_level: str,
) -> None:
    """Serve decisions over HTTP for gateways (nginx, Caddy, Traefik, Envoy)."""
    from policyengine.bundle import BundleError
    from policyengine.inputs import MissingBody
    from policyengine.server import DecisionLogConfig, Limits, ServerConfig, StoreOptions
    from policyengine.server import serve as run
    from policyengine.server.clientip import TrustedProxies
    from policyengine.server.tls import TlsError

    tls = _tls_files(tls_cert, tls_key, tls_client_ca)
    bundle = _bundle(directory, bundle_location, bundle_public_key, bundle_poll)

    if grpc_port is not None:
        _require_grpc()
    logging.basicConfig(
        level=log_level.upper(),
        stream=sys.stderr,
        format="policyengine[%(process)d] %(levelname)s %(message)s",
    )
    try:
        config = ServerConfig(
            policy_dir=directory or Path(),  # with a bundle: where it is unpacked, later
            host=host,
            port=port,
            grpc_port=grpc_port,
            workers=workers,
            redis_url=redis_url,
            store=StoreOptions(
                redis_timeout_ms, redis_on_error, redis_recovery_ms, ca_file=redis_ca_file
            ),
            trusted_proxies=TrustedProxies.parse(trusted_proxies),
            nginx_mode=nginx_mode,
            subject_header=subject_header,
            roles_header=roles_header,
            on_missing_body=MissingBody(on_missing_body),
            decision_log=(
                DecisionLogConfig(decision_log, decision_log_sample, decision_log_format)
                if decision_log
                else None
            ),
            otlp_endpoint=otlp_endpoint,
            reload_interval=reload_interval,
            decision_cache=decision_cache,
            limits=Limits(
                max_body_bytes=max_body, request_timeout=request_timeout, idle_timeout=idle_timeout
            ),
            tls=tls,
            bundle=bundle,
        )
    except ValueError as err:
        raise click.UsageError(str(err)) from None
    try:
        sys.exit(run(config))
    except PolicyError as err:
        click.echo(err.render(), err=True)
        sys.exit(EXIT_USAGE)
    except TlsError as err:
        click.echo(f"error[{err.code}]: {err}", err=True)
        sys.exit(EXIT_USAGE)
    except BundleError as err:
        click.echo(err.render(), err=True)
        sys.exit(EXIT_USAGE)
    except OSError as err:
        where = err.filename or f"{host}:{port}"
        click.echo(f"error: cannot serve on {where}: {err.strerror or err}", err=True)
        sys.exit(1)


GRPC_MODULES = ("grpc", "grpc_health.v1", "envoy.service.auth.v3")


def _require_grpc() -> None:
    """Found without importing grpc here: workers forked later import it themselves
    (grpc's threads do not survive a fork)."""
    for module in GRPC_MODULES:
        try:
            found = importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            raise click.UsageError(
                f"--grpc-port needs the `grpc` extra (module `{module}` is missing): "
                "pip install 'policyengine[grpc]'"
            )


def _tls_files(cert: Path | None, key: Path | None, client_ca: Path | None) -> TlsFiles | None:
    from policyengine.server.tls import TlsFiles

    if cert is None and key is None:
        if client_ca is not None:
            raise click.UsageError("--tls-client-ca needs --tls-cert and --tls-key")
        return None
    if cert is None or key is None:
        raise click.UsageError("--tls-cert and --tls-key go together")
    return TlsFiles(cert, key, client_ca)


def _bundle(
    directory: Path | None, location: str | None, public_key: Path | None, poll: str
) -> BundleConfig | None:
    from policyengine.server.config import BundleConfig

    if location is None:
        if directory is None:
            raise click.UsageError("give a policy DIRECTORY or --bundle URL|FILE")
        if public_key is not None:
            raise click.UsageError("--bundle-public-key goes with --bundle")
        return None
    if directory is not None:
        raise click.UsageError("DIRECTORY and --bundle exclude each other")
    if public_key is None:
        raise click.UsageError("--bundle needs --bundle-public-key: unsigned bundles are refused")
    return BundleConfig(location, public_key, _seconds(poll))


def _seconds(text: str) -> float:
    """`--bundle-poll`: a duration as policies write it (`30s`, `5m`, `500ms`), or seconds."""
    from policyengine.syntax.core import parse_duration

    value = parse_duration(text)
    if value is None:
        try:
            value = float(text)
        except ValueError:
            value = None
    if value is None or not 0 < value < float("inf"):
        raise click.BadParameter(
            f"`{text}` is not a duration above 0, like `30s`", param_hint="--bundle-poll"
        )
    return value
