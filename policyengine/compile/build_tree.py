"""Build the decision tree (route trie) from compiled routes."""

from __future__ import annotations

from policyengine.compile.state import CompileState
from policyengine.patterns import ParamType, PathPattern, SegmentKind
from policyengine.tree import CompiledRoute, DecisionTree, Endpoint, Node


def build_tree(state: CompileState) -> DecisionTree:
    root = Node()
    for flat, route in state.compiled_routes:
        for target in flat.route.targets:
            pattern = state.patterns.get(target)
            if pattern is None or f"{target.method.value} {pattern.text}" != route.label:
                continue
            endpoint = _endpoint_for(root, pattern)
            _attach(endpoint, target.method.value, route)
    return DecisionTree(root)


def _attach(endpoint: Endpoint, method: str, route: CompiledRoute) -> None:
    if method == "ANY":
        endpoint.any = route
    else:
        endpoint.by_method[method] = route


def _endpoint_for(root: Node, pattern: PathPattern) -> Endpoint:
    node = root
    for segment in pattern.segments:
        if segment.kind is SegmentKind.GLOB:
            node.glob = node.glob or Endpoint()
            return node.glob
        node = _child(node, segment.kind, segment.text, segment.type)
    node.leaf = node.leaf or Endpoint()
    return node.leaf


def _child(node: Node, kind: SegmentKind, text: str, param_type: object) -> Node:
    if kind is SegmentKind.STATIC:
        return node.static.setdefault(text, Node())
    if kind is SegmentKind.TYPED:
        assert isinstance(param_type, ParamType)
        for child in node.typed:
            if child.convert is param_type.convert:
                return child
        child = Node(param_type.convert)
        order = {t.convert: t for t in ParamType}
        node.typed = tuple(sorted((*node.typed, child), key=lambda c: order[c.convert]))
        return child
    if kind is SegmentKind.PARAM:
        node.param = node.param or Node()
        return node.param
    node.star = node.star or Node()
    return node.star
