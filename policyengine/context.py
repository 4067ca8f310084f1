"""The per-request view that rules, conditions and authn read: computed lazily, once."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from policyengine.decision import Identity, Request
from policyengine.jsonbody import InvalidJson, parse_json

if TYPE_CHECKING:
    from policyengine.tree import CompiledRoute

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_UNSET: Any = object()
MAX_UNCHECKED_BODY = 1024 * 1024  # what `body.x` conditions read on routes without `body`


class LowercaseHeaders(dict[str, str]):
    """Names already lowercased and repeated fields already joined, as the sidecar server
    builds them: `lower_headers` takes them as they are instead of redoing the work."""


def lower_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Names differing only in case are one field: joined with ", " (RFC 9110 §5.3), never
    one silently dropped (two Authorization headers must not pick a winner)."""
    if type(headers) is LowercaseHeaders:
        return headers
    lowered = {name.lower(): value for name, value in headers.items()}
    if len(lowered) == len(headers):  # no two names differ only in case: the common case
        return lowered
    lowered = {}
    for name, value in headers.items():
        key = name.lower()
        lowered[key] = f"{lowered[key]}, {value}" if key in lowered else value
    return lowered


class RequestContext:
    """One request being decided. Everything derived from it is computed at most once."""

    __slots__ = (
        "_body",
        "_client_ip",
        "_headers",
        "_query",
        "captures",
        "identity",
        "method",
        "now",
        "raw_query",
        "request",
        "route",
        "segments",
    )

    def __init__(
        self,
        request: Request,
        segments: tuple[str, ...],
        raw_query: str,
        now: float,
    ) -> None:
        self.request = request
        self.method = request.method
        self.segments = segments
        self.raw_query = raw_query
        self.now = now
        self.captures: list[Any] = []
        self.route: CompiledRoute | None = None
        self.identity: Identity | None = request.identity
        self._headers: dict[str, str] | None = None
        self._query: dict[str, list[str]] | None = None
        self._body: Any = _UNSET
        self._client_ip: Any = _UNSET

    @property
    def path(self) -> str:
        return "/" + "/".join(self.segments)

    @property
    def headers(self) -> dict[str, str]:
        """Header names lowercased (HTTP names are case-insensitive)."""
        if self._headers is None:
            self._headers = lower_headers(self.request.headers)
        return self._headers

    def header(self, lower_name: str) -> str | None:
        return self.headers.get(lower_name)

    @property
    def query(self) -> dict[str, list[str]]:
        if self._query is None:
            self._query = parse_qs(self.raw_query, keep_blank_values=True) if self.raw_query else {}
        return self._query

    def query_value(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None

    def json_body(self) -> Any:
        """The body as JSON, or None when absent or not valid JSON (schemas report why)."""
        if self._body is _UNSET:
            body = self.request.body
            if body is None:
                self._body = None
            elif isinstance(body, bytes | str):
                # conditions run before the size check of step 6: never parse more than it allows
                too_large = len(body) > self._body_limit()
                try:
                    self._body = parse_json(body) if body and not too_large else None
                except InvalidJson:
                    self._body = None
            else:
                self._body = body
        return self._body

    def _body_limit(self) -> int:
        spec = self.route.body if self.route is not None else None
        return spec.max_bytes if spec is not None else MAX_UNCHECKED_BODY

    @property
    def client_ip(self) -> IPAddress | None:
        if self._client_ip is _UNSET:
            try:
                raw = self.request.client_ip
                self._client_ip = ipaddress.ip_address(raw) if raw else None
            except ValueError:
                self._client_ip = None
        ip: IPAddress | None = self._client_ip
        return ip
