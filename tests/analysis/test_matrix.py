"""`policyengine matrix` on the retail example and on scope rules, in each format."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from analysis_support import MakeSet, run

RETAIL = Path(__file__).resolve().parents[2] / "policies" / "retail"


def matrix_json(directory: Path) -> dict[str, Any]:
    code, out = run("matrix", directory, "--format", "json")
    assert code == 0, out
    found: dict[str, Any] = json.loads(out)
    return found


def test_retail_matrix_json() -> None:
    matrix = matrix_json(RETAIL)
    assert list(matrix) == ["roles", "routes"]
    assert matrix["roles"] == ["viewer", "user", "admin", "anyone", "authenticated"]
    rows = {row["route"]: row for row in matrix["routes"]}
    assert list(rows["GET /api/public/health"]) == ["route", "access", "limits"]
    assert set(rows["GET /api/public/health"]["access"].values()) == {"allow"}
    # inheritance: admin inherits user inherits viewer
    assert rows["POST /api/orders"]["access"] == {
        "viewer": "deny", "user": "allow", "admin": "allow",
        "anyone": "deny", "authenticated": "deny",
    }  # fmt: skip
    assert rows["DELETE /api/orders/{id:int}"]["access"]["user"] == "deny"
    assert rows["DELETE /api/orders/{id:int}"]["access"]["admin"] == "allow"
    # a `when` decides for viewers; admins have a rule without one
    reports = rows["GET /api/tenants/{tenant}/reports"]["access"]
    assert (reports["viewer"], reports["admin"]) == ("conditional", "allow")
    # a deny with a condition makes even the allowed role conditional
    assert rows["ANY /api/admin/**"]["access"]["admin"] == "conditional"
    assert rows["GET /api/products"]["access"]["anyone"] == "deny"
    assert rows["GET /api/products"]["access"]["authenticated"] == "allow"
    (limit,) = rows["POST /api/orders"]["limits"]
    assert limit == {
        "name": "orders_per_user", "count": 5, "period_seconds": 10.0, "burst": None,
        "by": ["subject"],
    }  # fmt: skip
    assert len(rows) == 8


def test_retail_matrix_csv_markdown_and_text() -> None:
    code, out = run("matrix", RETAIL, "--format", "csv")
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == ["route", "viewer", "user", "admin", "anyone", "authenticated", "limits"]
    post = next(r for r in rows if r[0] == "POST /api/orders")
    assert post[1:6] == ["deny", "allow", "allow", "deny", "deny"]
    assert post[6] == "orders_per_user: 5 per 10s by subject"
    code, out = run("matrix", RETAIL, "--format", "markdown")
    lines = out.splitlines()
    assert lines[0] == "| route | viewer | user | admin | anyone | authenticated | limits |"
    assert lines[1] == "|---|---|---|---|---|---|---|"
    assert "| `GET /api/public/health` | allow | allow | allow | allow | allow |  |" in lines
    code, out = run("matrix", RETAIL)
    assert code == 0
    assert out.splitlines()[0].split() == ["route", *rows[0][1:]]


SCOPED = """
authn api_key {
    header "X-API-Key"
    keys file "keys.yaml"
}
role user
route GET /orders { allow scope "orders:read" }
route POST /orders { allow scope "orders:read", "orders:write" }
route DELETE /orders/{id} { allow role user scope "orders:admin" }
"""


def test_scope_columns(make_set: MakeSet) -> None:
    matrix = matrix_json(make_set("scoped", SCOPED))
    assert matrix["roles"] == [
        "user", "anyone", "authenticated", "scope:orders:read", "scope:orders:write",
    ]  # fmt: skip
    rows = {row["route"]: row["access"] for row in matrix["routes"]}
    assert rows["GET /orders"]["scope:orders:read"] == "allow"
    assert rows["GET /orders"]["authenticated"] == "conditional"  # the token's scopes decide
    assert rows["GET /orders"]["anyone"] == "deny"
    assert rows["POST /orders"]["scope:orders:read"] == "conditional"  # needs write too
    assert rows["DELETE /orders/{id}"]["user"] == "conditional"
    assert rows["DELETE /orders/{id}"]["scope:orders:read"] == "deny"


def test_matrix_of_a_broken_set_is_exit_2(make_set: MakeSet) -> None:
    code, out = run("matrix", make_set("broken", "route GET /x { allow role ghost }"))
    assert code == 2
    assert "compile/unknown-role" in out
