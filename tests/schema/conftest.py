"""The `decide` fixture: a one-policy engine, decided through Engine.decide."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from policyengine import Decision, Engine, Request

# --import-mode=importlib leaves sys.path alone; the shared helpers sit next to this file.
sys.path.insert(0, str(Path(__file__).parent))

from schema_support import JSON, Decide


@pytest.fixture
def decide(tmp_path: Path) -> Callable[..., Decide]:
    """decide(policy, **engine_options)(body, path=..., headers=..., raw=...) -> Decision.

    The body is a JSON value, sent as bytes with a JSON Content-Type, or with raw=True
    bytes/str sent as they are; None sends no body at all."""

    def build(policy: str, **options: Any) -> Decide:
        engine = Engine.from_text(policy, directory=str(tmp_path), **options)

        def run(
            body: Any = None,
            *,
            path: str = "/r",
            headers: dict[str, str] | None = None,
            raw: bool = False,
        ) -> Decision:
            payload = body if raw or body is None else json.dumps(body).encode()
            sent = JSON if headers is None else headers
            return engine.decide(Request("POST", path, sent, payload))

        return run

    return build
