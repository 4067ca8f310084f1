"""Envoy's ext_authz over gRPC (`envoy.service.auth.v3.Authorization/Check`).

Imported only when `serve --grpc-port` is given: grpcio and the generated Envoy protos
(the `grpc` extra) are not needed otherwise. A CheckRequest becomes the HTTP check
request Envoy's HTTP service would have sent (the original method, /v1/envoy + the
original path and query, Host, headers, body), so that `App` decides it through the
same adapter, decision cache, metrics and decision log as every other face; only the
answer differs: a CheckResponse, serialized once by the renderer (an allow's is kept
in the decision cache as bytes, as the HTTP faces keep theirs).

Allow: OK with the identity headers set on the upstream request (overwriting what the
client sent) and the identity headers a decision leaves unset named in
`headers_to_remove`, so a client cannot supply its own. Deny: a DeniedHttpResponse with
the decision's status, headers and JSON body, as the HTTP faces send it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

import grpc
from envoy.config.core.v3.base_pb2 import HeaderValue, HeaderValueOption
from envoy.service.auth.v3.external_auth_pb2 import (
    CheckRequest,
    CheckResponse,
    DeniedHttpResponse,
    OkHttpResponse,
)
from envoy.type.v3.http_status_pb2 import HttpStatus
from google.rpc.status_pb2 import Status
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from policyengine.decision import Decision, new_decision
from policyengine.request import Reason
from policyengine.server.adapters import ENVOY_PREFIX
from policyengine.server.app import App, log_internal_error
from policyengine.server.clientip import Peer, TrustedProxies
from policyengine.server.config import Limits
from policyengine.server.message import Fields, HttpRequest
from policyengine.server.render import DECISION_ID, Heads, deny_body
from policyengine.server.responses import Response, UnsafeHeaderValue, json_response

log = logging.getLogger("policyengine.server")

SERVICE = "envoy.service.auth.v3.Authorization"
_OVERWRITE = HeaderValueOption.HeaderAppendAction.OVERWRITE_IF_EXISTS_OR_ADD
# google.rpc codes: Envoy only tells OK from not OK, its logs and stats show the rest
_RPC_CODES = {400: 3, 401: 16, 403: 7, 404: 5, 413: 3, 415: 3, 429: 8, 500: 13, 503: 14}
_PERMISSION_DENIED = 7
MAX_CACHED = 4096


# -- CheckRequest -> the HTTP check request ----------------------------------------------
def http_request(check: Any, client: Any) -> HttpRequest:
    """The request Envoy's HTTP service would send for `check` (docs/gateways/envoy.md).

    Header values travel as protobuf strings (or raw bytes in `header_map` when Envoy's
    `encode_raw_headers` is on): encoded as UTF-8 they are the bytes the HTTP service
    would have sent, which the HTTP face decodes as Latin-1. Pseudo-headers are dropped;
    `:authority` is the Host.
    """
    http = check.attributes.request.http
    fields: Fields = [(b"host", http.host.encode())]
    raw = http.header_map.headers
    if raw:
        for entry in raw:
            if not entry.key.startswith(":") and entry.key != "host":
                fields.append((entry.key.encode(), entry.raw_value or entry.value.encode()))
    else:
        for name, value in http.headers.items():
            if not name.startswith(":") and name != "host":
                fields.append((name.encode(), value.encode()))
    body: bytes = http.raw_body or http.body.encode()
    return HttpRequest(http.method, ENVOY_PREFIX + http.path, fields, body, client)


def peer_host(peer: str) -> str:
    """`ipv4:127.0.0.1:5000` or `ipv6:[::1]:5000` -> the address; "" for others (unix:)."""
    kind, _, rest = peer.partition(":")
    if kind == "ipv4":
        return rest.rpartition(":")[0]
    if kind == "ipv6":
        return rest.rpartition(":")[0].strip("[]")
    return ""


# -- Decision -> CheckResponse -----------------------------------------------------------
class CheckRenderer:
    """A Renderer (render.py) whose Response body is a serialized CheckResponse."""

    def __init__(self) -> None:
        self._allows: dict[tuple[tuple[str, str], ...], bytes] = {}

    def __call__(self, decision: Decision, decision_id: str, heads: Heads) -> Response:
        if not decision.allow:
            return Response(decision.status, b"", denied(decision, decision_id))
        key = (*decision.upstream_headers.items(), ("", ""), *decision.response_headers.items())
        answer = self._allows.get(key)
        if answer is None:
            answer = allowed(decision, heads.identity)
            if len(self._allows) >= MAX_CACHED:
                self._allows.clear()
            self._allows[key] = answer
        return Response(200, b"", answer)


def allowed(decision: Decision, identity: tuple[str, ...]) -> bytes:
    upstream = decision.upstream_headers
    ok = OkHttpResponse(
        headers=_options(upstream),
        headers_to_remove=[name.lower() for name in identity if name not in upstream],
        response_headers_to_add=_options(decision.response_headers),
    )
    return bytes(CheckResponse(status=Status(code=0), ok_response=ok).SerializeToString())


def denied(decision: Decision, decision_id: str) -> bytes:
    headers = {
        DECISION_ID: decision_id,
        **decision.response_headers,
        "content-type": "application/json",
    }
    body = json_response(decision.status, deny_body(decision, decision_id)).body
    response = DeniedHttpResponse(
        status=HttpStatus(code=decision.status),
        headers=_options(headers),
        body=body.decode("utf-8"),
    )
    code = _RPC_CODES.get(decision.status, _PERMISSION_DENIED)
    answer = CheckResponse(status=Status(code=code), denied_response=response)
    return bytes(answer.SerializeToString())


def _options(headers: Mapping[str, str]) -> list[Any]:
    """Header options that replace any value the request already has; raises
    UnsafeHeaderValue as the HTTP faces do (a value must not smuggle a line break)."""
    options = []
    for name, value in headers.items():
        if not value.isprintable():
            raise UnsafeHeaderValue(f"the value of `{name}` holds a control character")
        options.append(HeaderValueOption(header=HeaderValue(key=name, value=value),
                                         append_action=_OVERWRITE))  # fmt: skip
    return options


def _internal_error() -> bytes:
    decision = new_decision(
        allow=False, status=500, reason=Reason.INTERNAL, message="internal error"
    )
    return denied(decision, "")


# -- the server ----------------------------------------------------------------------------
class GrpcServer:
    """The Authorization and Health services on one port, in this worker's event loop."""

    def __init__(self, server: Any, health_servicer: Any, port: int) -> None:
        self.server = server
        self.health = health_servicer
        self.port = port

    @classmethod
    async def start(
        cls,
        app: App,
        proxies: TrustedProxies,
        limits: Limits,
        address: tuple[str, int],
        *,
        reuse_port: bool,
        credentials: Any = None,
    ) -> GrpcServer:
        """Listening, and SERVING: the policy is loaded before this is called. With
        `credentials` (tls.grpc_server_credentials: the sidecar's --tls-* files, reloaded
        on change) the port speaks TLS, and mTLS with --tls-client-ca."""
        renderer = CheckRenderer()
        # the body, the headers and the protobuf framing: larger messages get
        # RESOURCE_EXHAUSTED, which Envoy (failure_mode_allow: false) turns into a 403
        largest = limits.max_body_bytes + 2 * limits.max_header_bytes + 64 * 1024
        server = grpc.aio.server(
            options=[
                ("grpc.max_receive_message_length", largest),
                ("grpc.so_reuseport", int(reuse_port)),  # --workers: each binds the port
            ]
        )

        peers: dict[str, Peer | None] = {}  # Envoy keeps a few connections open

        async def check(request: Any, context: Any) -> bytes:
            try:
                name = context.peer()
                client = peers.get(name)
                if client is None:
                    if len(peers) >= MAX_CACHED:
                        peers.clear()
                    client = peers[name] = proxies.peer(peer_host(name))
                reply = app.envoy_grpc(http_request(request, client), renderer)
                response = await reply if isinstance(reply, asyncio.Future) else reply
                return response.body
            except Exception as err:  # fail closed: a deny, never an allow
                log_internal_error(err)
                app.metrics.http_error(Reason.INTERNAL.value)
                return _internal_error()

        handler = grpc.method_handlers_generic_handler(
            SERVICE,
            {
                "Check": grpc.unary_unary_rpc_method_handler(
                    check, request_deserializer=CheckRequest.FromString
                )
            },
        )
        server.add_generic_rpc_handlers((handler,))
        health_servicer = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
        host, port = address
        where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        try:
            if credentials is None:
                bound = server.add_insecure_port(where)
            else:
                bound = server.add_secure_port(where, credentials)
        except RuntimeError as err:  # grpc's way of saying the port is taken
            raise OSError(f"cannot listen for gRPC on {where}: {err}") from None
        await server.start()
        for name in ("", SERVICE):
            await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
        return cls(server, health_servicer, bound)

    async def stop(self, grace: float) -> None:
        """NOT_SERVING first (a health-checking Envoy stops sending), then drain."""
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)
