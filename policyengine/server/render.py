"""From a Decision to the response each kind of gateway understands."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from policyengine.decision import Decision
from policyengine.server.responses import JSON, Response, header_lines, json_response

DECISION_ID = "X-Decision-Id"
POLICY_STATUS = "X-Policy-Status"
POLICY_REASON = "X-Policy-Reason"
ENVOY_REMOVE = "x-envoy-auth-headers-to-remove"
_NGINX_STATUSES = frozenset({401, 403})
MAX_CACHED_HEADS = 4096
_ID_END = b'"}\n'  # a deny body ends with its decision id, then this


class Heads:
    """Answers built once and sent again: an allow's whole response per identity, an
    nginx deny's header lines per status, reason and response headers (only its
    decision id is its own).

    Most answers repeat a few identities and reasons; formatting and checking their
    header lines and building the response again on every request would cost more
    than looking them up. Each table is bounded: identities come from tokens.
    """

    __slots__ = ("_cache", "_denies", "_envoy_cache", "_nginx_denies", "identity")

    def __init__(self, identity: tuple[str, ...]) -> None:
        self.identity = identity  # the identity header names, sent on every allow
        self._cache: dict[tuple[tuple[str, str], ...], Response] = {}
        self._envoy_cache: dict[tuple[tuple[str, str], ...], Response] = {}
        self._nginx_denies: dict[tuple[object, ...], tuple[bytes, bytes]] = {}
        self._denies: dict[tuple[object, ...], tuple[bytes, bytes]] = {}

    def forward_auth(self, upstream: Mapping[str, str]) -> Response:
        """Identity headers always present, empty when anonymous: Caddy's `copy_headers`
        and Traefik's `authResponseHeaders` then overwrite whatever the client sent."""
        key = tuple(upstream.items())
        response = self._cache.get(key)
        if response is None:
            absent = [(name, "") for name in self.identity if name not in upstream]
            response = _keep(self._cache, key, header_lines([*upstream.items(), *absent]))
        return response

    def envoy(self, upstream: Mapping[str, str]) -> Response:
        """Envoy sets `allowed_upstream_headers` from a 200, then removes the headers named
        in x-envoy-auth-headers-to-remove: identity headers we do not set are removed, so
        a client cannot supply its own."""
        key = tuple(upstream.items())
        response = self._envoy_cache.get(key)
        if response is None:
            absent = [name.lower() for name in self.identity if name not in upstream]
            extra = [(ENVOY_REMOVE, ", ".join(absent))] if absent else []
            response = _keep(self._envoy_cache, key, header_lines([*upstream.items(), *extra]))
        return response

    def deny(self, decision: Decision) -> tuple[bytes, bytes]:
        """A deny's header lines after its X-Decision-Id, and its JSON body up to the id's
        value (`"decision_id":"` is last): the id and `"}` complete it."""
        headers = decision.response_headers
        key = (decision.status, decision.reason, decision.message, *headers.items())
        parts = self._denies.get(key)
        if parts is None:
            body = json_response(decision.status, deny_body(decision, "")).body
            parts = (header_lines(headers.items()) + JSON, body[: -len(_ID_END)])
            if len(self._denies) >= MAX_CACHED_HEADS:
                self._denies.clear()
            self._denies[key] = parts
        return parts

    def nginx_deny(self, decision: Decision) -> tuple[bytes, bytes]:
        """The header lines before and after an nginx deny's X-Decision-Id."""
        headers = decision.response_headers
        key = (decision.status, decision.reason, *headers.items())
        parts = self._nginx_denies.get(key)
        if parts is None:
            marks = ((POLICY_STATUS, str(decision.status)), (POLICY_REASON, decision.reason.value))
            parts = (header_lines(marks), header_lines(headers.items()))
            if len(self._nginx_denies) >= MAX_CACHED_HEADS:
                self._nginx_denies.clear()
            self._nginx_denies[key] = parts
        return parts


def _keep(cache: dict[tuple[tuple[str, str], ...], Response], key: tuple[tuple[str, str], ...],
          head: bytes) -> Response:  # fmt: skip
    if len(cache) >= MAX_CACHED_HEADS:  # bounded: identities come from tokens
        cache.clear()
    response = cache[key] = Response(200, head)
    return response


Renderer = Callable[[Decision, str, Heads], Response]


def forward_auth(decision: Decision, decision_id: str, heads: Heads) -> Response:
    """Allow: 200 with the upstream headers and no body. Deny: see `deny`."""
    if not decision.allow:
        return deny(decision, decision_id, heads)
    return _with(heads.forward_auth(decision.upstream_headers), decision.response_headers)


def nginx(decision: Decision, decision_id: str, heads: Heads) -> Response:
    """nginx `auth_request` honours 2xx, 401 and 403 only: any other status travels in
    X-Policy-Status on a 403, for the documented `error_page` mapping to restore.
    No body either way: nginx discards it and drops the keep-alive connection."""
    if decision.allow:
        return forward_auth(decision, decision_id, heads)
    status = decision.status if decision.status in _NGINX_STATUSES else 403
    before, after = heads.nginx_deny(decision)
    return Response(status, b"".join((before, header_lines(((DECISION_ID, decision_id),)), after)))


def envoy(decision: Decision, decision_id: str, heads: Heads) -> Response:
    if not decision.allow:
        return deny(decision, decision_id, heads)
    return _with(heads.envoy(decision.upstream_headers), decision.response_headers)


def deny(decision: Decision, decision_id: str, heads: Heads) -> Response:
    """The decision's status, its response headers, and a small JSON body saying why."""
    id_line = header_lines(((DECISION_ID, decision_id),))  # checks it
    if decision.errors or '"' in decision_id or "\\" in decision_id:  # each its own
        head = id_line + header_lines(decision.response_headers.items())
        return json_response(decision.status, deny_body(decision, decision_id), head)
    after_id, body = heads.deny(decision)
    return Response(decision.status, id_line + after_id, body + decision_id.encode() + _ID_END)


def deny_body(decision: Decision, decision_id: str) -> dict[str, Any]:
    """What every deny says in its JSON body, whichever protocol carries it."""
    return {
        "status": decision.status,
        "reason": decision.reason.value,
        "message": decision.message,
        "errors": [error.to_dict() for error in decision.errors],
        "decision_id": decision_id,
    }


def decide(decision: Decision, decision_id: str, heads: Heads) -> Response:
    """`/v1/decide`: 200 with the whole decision, whatever it is."""
    head = header_lines(((DECISION_ID, decision_id),)) if decision_id else b""
    return json_response(200, decision.to_dict(), head)


def _with(allowed: Response, headers: Mapping[str, str]) -> Response:
    """An allow's response with the decision's own headers (RateLimit-*) added."""
    if not headers:
        return allowed
    return Response(200, allowed.head + header_lines(headers.items()))
