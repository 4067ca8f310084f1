"""From a Decision to the response each kind of gateway understands."""

from __future__ import annotations

from collections.abc import Mapping

from policyengine.decision import Decision
from policyengine.server.responses import Response, header_lines, json_response

DECISION_ID = "X-Decision-Id"
POLICY_STATUS = "X-Policy-Status"
POLICY_REASON = "X-Policy-Reason"
ENVOY_REMOVE = "x-envoy-auth-headers-to-remove"
_NGINX_STATUSES = frozenset({401, 403})


def forward_auth(decision: Decision, decision_id: str, identity: tuple[str, ...]) -> Response:
    """Allow: 200, no body, the identity headers always present (empty when anonymous).

    Sending them empty rather than leaving them out matters: Caddy's
    `copy_headers` and Traefik's `authResponseHeaders` then overwrite whatever the
    client sent under those names.
    """
    if not decision.allow:
        return deny(decision, decision_id)
    upstream = dict(decision.upstream_headers)
    for name in identity:
        upstream.setdefault(name, "")
    return Response(200, header_lines(_items(upstream, decision.response_headers)))


def nginx(decision: Decision, decision_id: str, identity: tuple[str, ...]) -> Response:
    """nginx `auth_request` honours 2xx, 401 and 403 only: any other status travels in
    X-Policy-Status on a 403, for the documented `error_page` mapping to restore.
    No body either way: nginx discards it and drops the keep-alive connection."""
    if decision.allow:
        return forward_auth(decision, decision_id, identity)
    status = decision.status if decision.status in _NGINX_STATUSES else 403
    marks = ((POLICY_STATUS, str(decision.status)), (POLICY_REASON, decision.reason.value),
             (DECISION_ID, decision_id))
    return Response(status, header_lines((*marks, *decision.response_headers.items())))


def envoy(decision: Decision, decision_id: str, identity: tuple[str, ...]) -> Response:
    """Envoy sets `allowed_upstream_headers` from a 200 and then removes the headers
    named in x-envoy-auth-headers-to-remove: identity headers we do not set are
    removed, so a client cannot supply its own."""
    if not decision.allow:
        return deny(decision, decision_id)
    upstream = decision.upstream_headers
    absent = [name.lower() for name in identity if name not in upstream]
    extra = ((ENVOY_REMOVE, ", ".join(absent)),) if absent else ()
    return Response(200, header_lines((*_items(upstream, decision.response_headers), *extra)))


def deny(decision: Decision, decision_id: str) -> Response:
    """The decision's status, its response headers, and a small JSON body saying why."""
    head = header_lines(((DECISION_ID, decision_id), *decision.response_headers.items()))
    return json_response(decision.status, {
        "status": decision.status,
        "reason": decision.reason.value,
        "message": decision.message,
        "errors": [error.to_dict() for error in decision.errors],
        "decision_id": decision_id,
    }, head)


def decide(decision: Decision, decision_id: str) -> Response:
    """`/v1/decide`: 200 with the whole decision, whatever it is."""
    return json_response(200, decision.to_dict(), header_lines(((DECISION_ID, decision_id),)))


def _items(*mappings: Mapping[str, str]) -> list[tuple[str, str]]:
    return [item for mapping in mappings for item in mapping.items()]
