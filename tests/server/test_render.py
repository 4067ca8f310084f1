"""Decisions rendered for each kind of gateway."""

from __future__ import annotations

import json

import pytest

from policyengine.decision import Decision
from policyengine.request import InputError, Reason
from policyengine.server import render
from policyengine.server.responses import Response, UnsafeHeaderValue, json_response, serialize

HEADS = render.Heads(("X-Auth-Subject", "X-Auth-Roles"))
ALICE = Decision(
    True,
    200,
    Reason.ALLOW,
    "allowed",
    "GET /o",
    "p:1",
    "alice",
    ("user",),
    {"X-Auth-Subject": "alice", "X-Auth-Roles": "user"},
    {},
)
ANONYMOUS = Decision(True, 200, Reason.ALLOW, "allowed", "GET /p", "p:2")
LIMITED = Decision(
    False,
    429,
    Reason.RATE_LIMITED,
    "rate limit `tight` exceeded",
    "GET /l",
    subject="alice",
    response_headers={"Retry-After": "30", "RateLimit": "r=0"},
)
INVALID = Decision(
    False,
    400,
    Reason.INPUT_INVALID,
    "body does not match",
    "POST /o",
    errors=(InputError("/quantity", "0 is less than 1"),),
)


def head(response: Response) -> dict[str, str]:
    lines = response.head.decode().split("\r\n")
    return dict(line.split(": ", 1) for line in lines if line)


def test_forward_auth_allow_has_identity_headers_and_no_body() -> None:
    response = render.forward_auth(ALICE, "", HEADS)
    assert response.status == 200 and response.body == b""
    assert head(response) == {"X-Auth-Subject": "alice", "X-Auth-Roles": "user"}
    assert b"Content-Length: 0\r\n" in serialize(response, b"", False, False)


def test_anonymous_allow_still_sends_empty_identity_headers() -> None:
    # so Caddy copy_headers and Traefik authResponseHeaders overwrite a client's own
    assert head(render.forward_auth(ANONYMOUS, "", HEADS)) == {
        "X-Auth-Subject": "",
        "X-Auth-Roles": "",
    }


def test_deny_has_the_status_the_headers_and_a_small_json_body() -> None:
    response = render.forward_auth(LIMITED, "abc-1", HEADS)
    assert response.status == 429
    assert head(response)["Retry-After"] == "30" and head(response)["X-Decision-Id"] == "abc-1"
    body = json.loads(response.body)
    assert body == {
        "status": 429,
        "reason": "ratelimit.exceeded",
        "message": "rate limit `tight` exceeded",
        "errors": [],
        "decision_id": "abc-1",
    }
    errors = json.loads(render.forward_auth(INVALID, "abc-2", HEADS).body)["errors"]
    assert errors == [{"pointer": "/quantity", "message": "0 is less than 1"}]


@pytest.mark.parametrize("decision", [LIMITED, INVALID, ALICE._replace(allow=False, status=403)])
@pytest.mark.parametrize("renderer", [render.forward_auth, render.envoy, render.nginx])
def test_a_kept_deny_is_the_one_built_afresh_but_for_its_own_id(
    decision: Decision, renderer: render.Renderer
) -> None:
    heads = render.Heads(("X-Auth-Subject",))
    for decision_id in ("abc-5", "abc-6", 'say "hi"'):  # the last is never ours: built afresh
        kept = renderer(decision, decision_id, heads)
        fresh = renderer(decision, decision_id, render.Heads(("X-Auth-Subject",)))
        assert kept == fresh
        assert head(kept)["X-Decision-Id"] == decision_id
        if kept.body:
            assert json.loads(kept.body)["decision_id"] == decision_id
            assert (
                kept.body
                == json_response(decision.status, render.deny_body(decision, decision_id)).body
            )


@pytest.mark.parametrize(("decision", "status"), [(LIMITED, 403), (INVALID, 403)])
def test_nginx_mode_carries_other_statuses_in_a_header(decision: Decision, status: int) -> None:
    response = render.nginx(decision, "abc-3", HEADS)
    headers = head(response)
    assert response.status == status and response.body == b""
    assert headers["X-Policy-Status"] == str(decision.status)
    assert headers["X-Policy-Reason"] == decision.reason.value
    assert headers["X-Decision-Id"] == "abc-3"


def test_nginx_mode_keeps_401_and_403_and_the_challenge() -> None:
    missing = Decision(
        False,
        401,
        Reason.AUTHN_MISSING,
        "credentials required",
        response_headers={"WWW-Authenticate": 'ApiKey realm="k"'},
    )
    response = render.nginx(missing, "abc-4", HEADS)
    assert response.status == 401
    assert head(response)["WWW-Authenticate"] == 'ApiKey realm="k"'
    assert head(response)["X-Policy-Status"] == "401"
    assert render.nginx(LIMITED, "abc-5", HEADS).status == 403
    assert head(render.nginx(LIMITED, "abc-5", HEADS))["Retry-After"] == "30"


def test_envoy_allow_removes_identity_headers_it_does_not_set() -> None:
    assert head(render.envoy(ALICE, "", HEADS)) == {
        "X-Auth-Subject": "alice",
        "X-Auth-Roles": "user",
    }
    assert head(render.envoy(ANONYMOUS, "", HEADS)) == {
        "x-envoy-auth-headers-to-remove": "x-auth-subject, x-auth-roles"
    }


def test_a_header_value_that_would_split_the_response_is_refused() -> None:
    evil = Decision(
        True,
        200,
        Reason.ALLOW,
        "allowed",
        subject="eve\r\nX-Admin: 1",
        upstream_headers={"X-Auth-Subject": "eve\r\nX-Admin: 1"},
    )
    with pytest.raises(UnsafeHeaderValue):
        render.forward_auth(evil, "", render.Heads(("X-Auth-Subject",)))


def test_decide_returns_the_whole_decision_as_200() -> None:
    response = render.decide(LIMITED, "abc-6", HEADS)
    assert response.status == 200
    assert json.loads(response.body) == LIMITED.to_dict()
    assert head(response)["X-Decision-Id"] == "abc-6"


def test_head_requests_get_no_body_but_the_length() -> None:
    data = serialize(render.forward_auth(LIMITED, "x", HEADS), b"", True, True)
    assert data.endswith(b"\r\n\r\n") and b"Connection: close" in data
    assert b"Content-Length: " in data and b"Content-Length: 0" not in data
