"""Text, Markdown and CSV for diffs and matrices (JSON is each one's `to_json`)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import Any

from policyengine.analysis.diff import Change
from policyengine.analysis.matrix import Matrix

NOTHING = "(none)"


def _lines(value: Any) -> list[str]:
    """A before/after value as short lines: `viewer: deny`, `limits: a, b`."""
    if value is None:
        return [NOTHING]
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [", ".join(str(v) for v in value) or NOTHING]
    lines: list[str] = []
    for key, item in value.items():
        if key == "access":
            lines.extend(_access_lines(item))
        elif key == "reached":
            lines.append(f"via {item}")
        elif key == "schema":
            lines.extend(f"{pointer}: {json.dumps(v)}" for pointer, v in item.items())
        else:
            lines.append(f"{key}: " + "; ".join(_lines(item)))
    return lines


def _access_lines(access: dict[str, str]) -> list[str]:
    """Each principal's grant, the denied ones on one line."""
    lines = [f"{who}: {grant}" for who, grant in access.items() if grant != "deny"]
    denied = [who for who, grant in access.items() if grant == "deny"]
    if denied:
        lines.append(f"deny: {', '.join(denied)}")
    return lines


def _summary_line(changes: Sequence[Change]) -> str:
    if not changes:
        return "no changes"
    widening = sum(1 for c in changes if c.widens)
    plural = "s" if len(changes) != 1 else ""
    return f"{len(changes)} change{plural}, {widening} widen{'s' if widening == 1 else ''}"


def diff_text(changes: Sequence[Change]) -> str:
    out: list[str] = []
    for change in changes:
        mark = "WIDENS" if change.widens else "narrows"
        out.append(f"{change.route}: {change.kind.value} ({mark})")
        for label, value in (("before", change.before), ("after", change.after)):
            lines = _lines(value)
            out.append(f"    {label + ':':<7} {lines[0]}")
            out.extend(f"            {line}" for line in lines[1:])
    out.append(_summary_line(changes))
    return "\n".join(out)


def _cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def diff_markdown(changes: Sequence[Change]) -> str:
    """A table for a pull-request comment; widening rows first."""
    title = f"### Policy diff: {_summary_line(changes)}"
    if not changes:
        return title + "\n"
    rows = [
        "| | route | change | before | after |",
        "|---|---|---|---|---|",
    ]
    for change in sorted(changes, key=lambda c: not c.widens):
        mark = ":warning: widens" if change.widens else ""
        before = "<br>".join(_cell(line) for line in _lines(change.before))
        after = "<br>".join(_cell(line) for line in _lines(change.after))
        route = _cell(change.route).replace("`", "")
        rows.append(f"| {mark} | `{route}` | {change.kind.value} | {before} | {after} |")
    return "\n".join([title, "", *rows]) + "\n"


def _limit_names(row_limits: Sequence[Any]) -> str:
    return ", ".join(limit.describe() for limit in row_limits)


def matrix_rows(matrix: Matrix) -> list[list[str]]:
    header = ["route", *matrix.columns, "limits"]
    body = [
        [row.route, *(a.value for a in row.access), _limit_names(row.limits)] for row in matrix.rows
    ]
    return [header, *body]


def matrix_text(matrix: Matrix) -> str:
    rows = matrix_rows(matrix)
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)) + "  " + row[-1]
        for row in rows
    ).rstrip()


def matrix_markdown(matrix: Matrix) -> str:
    rows = matrix_rows(matrix)
    lines = [
        "| " + " | ".join(_cell(c) for c in rows[0]) + " |",
        "|" + "---|" * len(rows[0]),
    ]
    for row in rows[1:]:
        cells = [f"`{_cell(row[0])}`", *(_cell(c) for c in row[1:])]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def matrix_csv(matrix: Matrix) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerows(matrix_rows(matrix))
    return buffer.getvalue()
