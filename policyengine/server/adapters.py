"""From an HTTP request to an engine Request, per endpoint; never an identity.

Each gateway describes the original request its own way: nginx in X-Original-*,
Traefik and Caddy in X-Forwarded-*, Envoy in the request line itself (path after
our prefix). None of them may set `Request.identity`: only an authn block does.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from policyengine.decision import LowercaseHeaders, Request
from policyengine.jsonbody import InvalidJson, parse_json
from policyengine.server.message import HttpRequest, add_header

ENVOY_PREFIX = "/v1/envoy"
_DECIDE_FIELDS = frozenset({"method", "path", "headers", "body", "client_ip"})


class Refusal(NamedTuple):
    """The request cannot be decided as sent (400); the message is safe to show."""

    message: str


def forward_auth_request(http: HttpRequest, client_ip: str | None) -> Request | Refusal:
    """nginx `auth_request`, Traefik ForwardAuth, Caddy `forward_auth`."""
    method = _original(http.headers, "x-original-method", "x-forwarded-method")
    uri = _original(http.headers, "x-original-uri", "x-forwarded-uri")
    if isinstance(method, Refusal):
        return method
    if isinstance(uri, Refusal):
        return uri
    if method is None or uri is None:
        return Refusal(
            "forward-auth needs the original method and URI: X-Original-Method and "
            "X-Original-URI (nginx) or X-Forwarded-Method and X-Forwarded-Uri"
        )
    return Request(method, uri, gateway_headers(http), http.body or None, client_ip)


def gateway_headers(http: HttpRequest) -> LowercaseHeaders:
    """The headers with `Host` as the gateway saw it: a `--trusted-proxy` peer's
    `X-Forwarded-Host` replaces `Host`, as sent: a list of hosts is refused as two `Host`
    fields are (400 `request.bad_host`), not resolved to one of them. From any other
    peer it is the client's own claim and changes nothing: the engine never reads it
    (hosts.py)."""
    headers = http.headers
    client = http.client
    if client is None or not client.trusted:
        return headers
    forwarded = headers.get("x-forwarded-host")
    if forwarded is None:
        return headers
    seen = LowercaseHeaders(headers)
    seen["host"] = forwarded
    return seen


def _original(headers: dict[str, str], nginx: str, forwarded: str) -> str | Refusal | None:
    """The one value both conventions agree on.

    Each gateway sets its own header and passes the client's others through, so a
    client behind nginx can send X-Forwarded-Uri (and one behind Caddy
    X-Original-URI) naming a path it is allowed. Two values that differ mean one
    of them was made up: refuse rather than guess which.
    """
    first, second = headers.get(nginx), headers.get(forwarded)
    if first is not None and second is not None and first != second:
        return Refusal(f"conflicting `{nginx}` and `{forwarded}` headers")
    return first if first is not None else second


def envoy_request(http: HttpRequest, client_ip: str | None) -> Request | None:
    """Envoy `ext_authz` (HTTP service, `path_prefix: /v1/envoy`); None off the prefix.

    Envoy sends the original method, `path_prefix` + the original path and query,
    the original Host, the headers its `allowed_headers` lets through, and the body
    when `with_request_body` is set (Content-Length then counts it).
    """
    rest = http.target[len(ENVOY_PREFIX) :]
    if not rest.startswith("/"):
        return None
    # Envoy's check carries the original Host (`:authority`) itself and never sets
    # X-Forwarded-Host: one that arrives is the client's (gRPC checks carry every header)
    return Request(http.method, rest, http.headers, http.body or None, client_ip)


def decide_request(http: HttpRequest) -> Request | Refusal:
    """`POST /v1/decide`: {"method", "path", "headers", "body", "client_ip"}."""
    try:
        payload = parse_json(http.body)
    except InvalidJson as err:
        return Refusal(f"the request body must be a JSON object: {err}")
    if not isinstance(payload, dict):
        return Refusal("the request body must be a JSON object")
    unknown = sorted(set(payload) - _DECIDE_FIELDS)
    if unknown:
        return Refusal(
            f"unknown field `{unknown[0]}`; fields are method, path, headers, body, client_ip"
        )
    method, path = payload.get("method"), payload.get("path")
    if not isinstance(method, str) or not method:
        return Refusal("`method` must be a non-empty string")
    if not isinstance(path, str) or not path:
        return Refusal("`path` must be a non-empty string")
    headers = _decide_headers(payload.get("headers", {}))
    if isinstance(headers, Refusal):
        return headers
    client_ip = payload.get("client_ip")
    if client_ip is not None and not isinstance(client_ip, str):
        return Refusal("`client_ip` must be a string")
    return Request(method, path, headers, payload.get("body"), client_ip)


def _decide_headers(raw: Any) -> LowercaseHeaders | Refusal:
    if not isinstance(raw, dict):
        return Refusal("`headers` must be an object of strings")
    headers = LowercaseHeaders()
    for name, value in raw.items():
        values = value if isinstance(value, list) else [value]
        if not all(isinstance(v, str) for v in values):
            return Refusal(f"header `{name}` must be a string or a list of strings")
        for item in values:
            add_header(headers, name.lower(), item)
    return headers
