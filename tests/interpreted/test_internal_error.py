"""The sidecar's last guard: an error where the app starts the engine's coroutine (outside
the engine's own guard) is a 500 deny, logged without request data. Run interpreted:
compiled, the app calls `start_eagerly` without a lookup, so it cannot be replaced."""

from __future__ import annotations

import logging
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "server"))  # the shared server helpers

from server_support import ServerThread, forward_auth, make_config, request, write_policy

from policyengine.server import app as app_module

ALICE = {"X-API-Key": "key-alice"}


def test_an_internal_error_is_a_deny_and_logs_no_request_data(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert not app_module.__file__.endswith(".so"), "this test needs the interpreted app"

    def exploding(coro: Coroutine[Any, Any, Any]) -> object:
        coro.close()
        raise RuntimeError(f"failed on {ALICE['X-API-Key']}")  # request data in the message

    monkeypatch.setattr(app_module, "start_eagerly", exploding)
    with (
        ServerThread(make_config(write_policy(tmp_path / "policy"))) as server,
        caplog.at_level(logging.ERROR, logger="policyengine.server"),
    ):
        reply = request(
            server.port, "GET", "/v1/forward-auth", forward_auth("GET", "/api/orders/7", **ALICE)
        )
    assert reply.status == 500 and reply.json()["reason"] == "internal"
    assert "RuntimeError" in caplog.text
    assert ALICE["X-API-Key"] not in caplog.text
