"""From a Decision to the response each kind of gateway understands."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from policyengine.decision import Decision
from policyengine.server.responses import Response, header_lines, json_response

DECISION_ID = "X-Decision-Id"
POLICY_STATUS = "X-Policy-Status"
POLICY_REASON = "X-Policy-Reason"
ENVOY_REMOVE = "x-envoy-auth-headers-to-remove"
_NGINX_STATUSES = frozenset({401, 403})
MAX_CACHED_HEADS = 4096


class AllowHeads:
    """The upstream-header lines of an allow, built once per identity.

    Most allows repeat a few identities; formatting and checking their header lines
    again on every request would cost more than looking them up.
    """

    __slots__ = ("_cache", "_envoy_cache", "identity")

    def __init__(self, identity: tuple[str, ...]) -> None:
        self.identity = identity  # the identity header names, sent on every allow
        self._cache: dict[tuple[tuple[str, str], ...], bytes] = {}
        self._envoy_cache: dict[tuple[tuple[str, str], ...], bytes] = {}

    def forward_auth(self, upstream: Mapping[str, str]) -> bytes:
        """Identity headers always present, empty when anonymous: Caddy's `copy_headers`
        and Traefik's `authResponseHeaders` then overwrite whatever the client sent."""
        return self._lookup(self._cache, upstream, self._forward_auth_lines)

    def envoy(self, upstream: Mapping[str, str]) -> bytes:
        """Envoy sets `allowed_upstream_headers` from a 200, then removes the headers named
        in x-envoy-auth-headers-to-remove: identity headers we do not set are removed, so
        a client cannot supply its own."""
        return self._lookup(self._envoy_cache, upstream, self._envoy_lines)

    def _lookup(
        self,
        cache: dict[tuple[tuple[str, str], ...], bytes],
        upstream: Mapping[str, str],
        build: Callable[[Mapping[str, str]], bytes],
    ) -> bytes:
        key = tuple(upstream.items())
        head = cache.get(key)
        if head is None:
            head = build(upstream)
            if len(cache) >= MAX_CACHED_HEADS:
                cache.clear()
            cache[key] = head
        return head

    def _forward_auth_lines(self, upstream: Mapping[str, str]) -> bytes:
        absent = [(name, "") for name in self.identity if name not in upstream]
        return header_lines([*upstream.items(), *absent])

    def _envoy_lines(self, upstream: Mapping[str, str]) -> bytes:
        absent = [name.lower() for name in self.identity if name not in upstream]
        extra = [(ENVOY_REMOVE, ", ".join(absent))] if absent else []
        return header_lines([*upstream.items(), *extra])


Renderer = Callable[[Decision, str, AllowHeads], Response]


def forward_auth(decision: Decision, decision_id: str, heads: AllowHeads) -> Response:
    """Allow: 200 with the upstream headers and no body. Deny: see `deny`."""
    if not decision.allow:
        return deny(decision, decision_id)
    return Response(
        200, heads.forward_auth(decision.upstream_headers) + _lines(decision.response_headers)
    )


def nginx(decision: Decision, decision_id: str, heads: AllowHeads) -> Response:
    """nginx `auth_request` honours 2xx, 401 and 403 only: any other status travels in
    X-Policy-Status on a 403, for the documented `error_page` mapping to restore.
    No body either way: nginx discards it and drops the keep-alive connection."""
    if decision.allow:
        return forward_auth(decision, decision_id, heads)
    status = decision.status if decision.status in _NGINX_STATUSES else 403
    marks = (
        (POLICY_STATUS, str(decision.status)),
        (POLICY_REASON, decision.reason.value),
        (DECISION_ID, decision_id),
    )
    return Response(status, header_lines((*marks, *decision.response_headers.items())))


def envoy(decision: Decision, decision_id: str, heads: AllowHeads) -> Response:
    if not decision.allow:
        return deny(decision, decision_id)
    return Response(200, heads.envoy(decision.upstream_headers) + _lines(decision.response_headers))


def deny(decision: Decision, decision_id: str) -> Response:
    """The decision's status, its response headers, and a small JSON body saying why."""
    head = header_lines(((DECISION_ID, decision_id), *decision.response_headers.items()))
    return json_response(decision.status, deny_body(decision, decision_id), head)


def deny_body(decision: Decision, decision_id: str) -> dict[str, Any]:
    """What every deny says in its JSON body, whichever protocol carries it."""
    return {
        "status": decision.status,
        "reason": decision.reason.value,
        "message": decision.message,
        "errors": [error.to_dict() for error in decision.errors],
        "decision_id": decision_id,
    }


def decide(decision: Decision, decision_id: str, heads: AllowHeads) -> Response:
    """`/v1/decide`: 200 with the whole decision, whatever it is."""
    head = header_lines(((DECISION_ID, decision_id),)) if decision_id else b""
    return json_response(200, decision.to_dict(), head)


def _lines(headers: Mapping[str, str]) -> bytes:
    return header_lines(headers.items()) if headers else b""
