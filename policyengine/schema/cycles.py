"""Inline schemas whose required fields lead back to themselves: no finite JSON satisfies them.

`schema Node { next: Node }` needs a Node inside every Node. A cycle is broken by an
optional field (`next?: Node`) or a list that may be empty (`children: [Node]`); a list
with `len 1..` still forces its item type.
"""

from __future__ import annotations

from collections.abc import Iterator

from policyengine import ast
from policyengine.errors import Diagnostics

Edge = tuple[ast.Field, str]  # a required field, and a schema every valid value must contain


def report_required_cycles(schemas: dict[str, ast.InlineSchema], diags: Diagnostics) -> None:
    edges = {name: list(_forced_by(schema)) for name, schema in schemas.items()}
    for name in sorted(edges):
        cycle = _cycle_from(name, edges)
        if cycle is None or min(owner for owner, _ in cycle) != name:
            continue  # reported once, from the cycle's first schema by name
        steps = " -> ".join(f"{owner}.{field.name.value}" for owner, field in cycle)
        diags.error(
            "compile/recursive-schema",
            f"schema `{name}` can never be satisfied: its required fields lead back to it "
            f"({steps} -> {name})",
            cycle[0][1].span,
            "make a field in the cycle optional (`name?:`) or a list that may be empty",
        )


def _forced_by(schema: ast.InlineSchema) -> Iterator[Edge]:
    for field in schema.fields:
        if not field.optional:
            for target in _forced_names(field.type):
                yield field, target


def _forced_names(kind: ast.TypeExpr) -> Iterator[str]:
    if isinstance(kind, ast.SchemaRef):
        yield kind.name.value
    elif isinstance(kind, ast.ArrayType) and kind.length is not None:
        low = kind.length.low
        if low is not None and low >= 1:
            yield from _forced_names(kind.items)


def _cycle_from(start: str, edges: dict[str, list[Edge]]) -> list[tuple[str, ast.Field]] | None:
    """A path of (schema, field) steps from `start` back to it, if there is one."""
    stack: list[tuple[str, list[tuple[str, ast.Field]]]] = [(start, [])]
    seen = {start}
    while stack:
        owner, path = stack.pop()
        for field, target in edges.get(owner, ()):
            step = [*path, (owner, field)]
            if target == start:
                return step
            if target not in seen:
                seen.add(target)
                stack.append((target, step))
    return None
