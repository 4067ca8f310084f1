"""Which operations of a spec reach a route of a compiled policy, and which routes no
operation reaches.

Each operation is tried the way the engine would route it: a sample request path (its
parameters filled with values of their types) walks the decision tree, so precedence,
typed segments, `**`, `ANY` and HEAD falling back to GET all count as they do at
request time.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from policyengine.openapi.operations import Operation
from policyengine.openapi.paths import sample_path
from policyengine.paths import BadPath, normalize_path
from policyengine.tree import DecisionTree, Endpoint, Node


@dataclass(frozen=True, slots=True)
class CoverageReport:
    operations: int
    uncovered: tuple[str, ...]  # `METHOD TEMPLATE` of operations no route matches
    unmatched_routes: tuple[str, ...]  # route labels no operation reaches

    def to_dict(self) -> dict[str, object]:
        return {
            "operations": self.operations,
            "uncovered": list(self.uncovered),
            "unmatched_routes": list(self.unmatched_routes),
        }


def coverage(tree: DecisionTree, ops: tuple[Operation, ...]) -> CoverageReport:
    uncovered: list[str] = []
    reached: set[str] = set()
    for op in ops:
        label = _route_for(tree, op)
        if label is None:
            uncovered.append(op.label)
        else:
            reached.add(label)
    unmatched = sorted(set(route_labels(tree)) - reached)
    return CoverageReport(len(ops), tuple(uncovered), tuple(unmatched))


def _route_for(tree: DecisionTree, op: Operation) -> str | None:
    try:
        segments = normalize_path(sample_path(op))
    except BadPath:
        return None
    match = tree.match(segments, op.method)
    return match[0].label if match is not None else None


def route_labels(tree: DecisionTree) -> Iterator[str]:
    """Every route of the tree, `METHOD PATTERN`."""
    stack: list[Node] = [tree.root]
    while stack:
        node = stack.pop()
        for endpoint in (node.leaf, node.glob):
            yield from _endpoint_labels(endpoint)
        stack.extend(node.static.values())
        stack.extend(node.typed)
        stack.extend(child for child in (node.param, node.star) if child is not None)


def _endpoint_labels(endpoint: Endpoint | None) -> Iterator[str]:
    if endpoint is None:
        return
    for route in endpoint.by_method.values():
        yield route.label
    if endpoint.any is not None:
        yield endpoint.any.label
