"""`CompiledPolicy.inputs`: what the compiler collects, and (in a second interpreter,
on the interpreted source) that every header a decision reads is among it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from policyengine import Engine
from policyengine.hardening import FIELDS as OVERRIDE_FIELDS

ROOT = Path(__file__).resolve().parents[1]


def test_every_header_read_is_a_declared_input() -> None:
    """tests/interpreted/test_header_reads.py, run where RequestContext is interpreted."""
    env = {**os.environ, "POLICYENGINE_INTERPRETED": "1"}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rA", "tests/interpreted"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert " passed" in run.stdout and "skipped" not in run.stdout, run.stdout[-2000:]


def test_the_inputs_name_authn_condition_and_limit_headers(tmp_path: Path) -> None:
    (tmp_path / "keys.yaml").write_text("keys: []\n")
    engine = Engine.from_text(
        """
        authn api_key { header "X-Key"; keys file "keys.yaml" }
        role user
        limit per_tenant 5 per second by header "X-Tenant"
        route GET /a {
            allow role user
            deny when header.X-Debug == "on" or client_ip in 10.0.0.0/8
            limit per_tenant
        }
        """,
        directory=str(tmp_path),
    )
    # and the override fields every decision reads, to refuse them (hardening.py), and
    # the host fields (hosts.py, server/adapters.py)
    assert engine.policy.inputs.headers == tuple(
        sorted(("x-debug", "x-key", "x-tenant", "host", "x-forwarded-host", *OVERRIDE_FIELDS))
    )
    assert engine.policy.inputs.client_ip
