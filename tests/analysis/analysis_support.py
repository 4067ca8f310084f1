"""Shared by tests/analysis: a base policy set, its edits, and the CLI run on them."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from policyengine.cli import main

KEYS = """keys:
  - sha256: "ad77f83d5d5b9a3b738cfc75982ec0460450b94aa1bac0f16451a1142c89c4c8"
    subject: alice
    roles: [user]
    claims: {tenant: acme}
"""

BASE = """policy "shop"

authn api_key {
    header "X-API-Key"
    keys file "keys.yaml"
}

role viewer
role user inherits viewer
role admin inherits user

schema Address { city: string len 1..50 }
schema Order {
    productId: string matching "^[A-Z0-9]{8}$"
    quantity: int 1..100
    note?: string len ..200
    ship?: Address
}

limit per_user 5 per 10s by subject

route GET /health { allow anyone }
route GET /orders/{id:int} { allow role user }
route POST /orders {
    allow role user
    body Order max 16KiB
    limit per_user
}
route GET /reports/{tenant} {
    allow role viewer when claims.tenant == path.tenant
    allow role admin
}
route ANY /admin/** {
    allow role admin
}
"""

MakeSet = Callable[..., Path]  # the make_set fixture (conftest.py)


def edit(text: str, old: str, new: str) -> str:
    """`text` with `old` replaced, which must be there (a test must change something)."""
    assert old in text, old
    return text.replace(old, new)


def run(*args: str | Path) -> tuple[int, str]:
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result.exit_code, result.output


def changes(old: Path | str, new: Path | str) -> list[dict[str, Any]]:
    code, out = run("diff", old, new, "--format", "json")
    assert code == 0, out
    found: list[dict[str, Any]] = json.loads(out)["changes"]
    return found
