"""Build the decision tree (route trie) from compiled routes."""

from __future__ import annotations

from policyengine.compile.state import CompileState
from policyengine.patterns import ParamType, PathPattern, SegmentKind
from policyengine.tree import CompiledRoute, DecisionTree, Endpoint, Node


def build_tree(state: CompileState) -> DecisionTree:
    """Each compiled target at the end of its pattern's path, in the order compiled."""
    root = Node()
    for compiled in state.compiled_targets:
        endpoint = _endpoint_for(root, compiled.pattern)
        _attach(endpoint, compiled.target.method.value, compiled.route)
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
        child = node.static.get(text)
        if child is None:
            child = node.static[text] = Node()
        return child
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
