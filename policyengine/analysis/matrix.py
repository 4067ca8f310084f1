"""`policyengine matrix`: routes by kinds of caller, each cell allow, conditional or deny."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from policyengine.analysis.access import Access
from policyengine.analysis.summary import LimitSummary, PolicySummary


@dataclass(frozen=True, slots=True)
class MatrixRow:
    route: str
    access: tuple[Access, ...]  # one per column
    limits: tuple[LimitSummary, ...]


@dataclass(frozen=True, slots=True)
class Matrix:
    columns: tuple[str, ...]  # each role, anyone, authenticated, each `scope:NAME`
    rows: tuple[MatrixRow, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "roles": list(self.columns),
            "routes": [
                {
                    "route": row.route,
                    "access": {c: a.value for c, a in zip(self.columns, row.access, strict=True)},
                    "limits": [limit.to_json() for limit in row.limits],
                }
                for row in self.rows
            ],
        }


def access_matrix(summary: PolicySummary) -> Matrix:
    principals = summary.principals()
    rows = tuple(
        MatrixRow(
            route.label,
            tuple(route.grant(who).access for who in principals),
            route.limits,
        )
        for route in summary.routes
    )
    return Matrix(tuple(p.name for p in principals), rows)
