from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# --import-mode=importlib leaves sys.path alone; the shared helpers sit next to this file.
sys.path.insert(0, str(Path(__file__).parent))

from server_support import ServerThread, make_config, write_policy

from policyengine.server.clientip import TrustedProxies
from policyengine.server.config import Limits


@pytest.fixture
def policy_dir(tmp_path: Path) -> Path:
    return write_policy(tmp_path / "policy")


@pytest.fixture
def server(policy_dir: Path) -> Iterator[ServerThread]:
    config = make_config(
        policy_dir,
        trusted_proxies=TrustedProxies.parse(["127.0.0.9/32"]),
        limits=Limits(
            request_timeout=1.0, idle_timeout=2.0, max_body_bytes=4096, max_header_bytes=8192
        ),
    )
    with ServerThread(config) as running:
        yield running
