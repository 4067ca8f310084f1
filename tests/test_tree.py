"""The decision tree: the greedy walk with lookahead agrees with full backtracking."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from policyengine.compile import compile_policy_set
from policyengine.errors import PolicyError
from policyengine.loader import parse_text
from policyengine.tree import CompiledRoute, DecisionTree, Match, _walk

KINDS = ["a", "b", "1", "{p:int}", "{q}", "*"]
VALUES = ["a", "b", "1", "22", "x"]


def full_walk(tree: DecisionTree, segments: tuple[str, ...], method: str) -> Match | None:
    captures: list[Any] = []
    route = _walk(tree.root, segments, 0, method, captures)
    return (route, captures) if route is not None else None


@st.composite
def pattern(draw: st.DrawFn) -> list[str]:
    kinds = draw(st.lists(st.sampled_from(KINDS), max_size=4))
    named = [f"{{q{i}}}" if k == "{q}" else f"{{p{i}:int}}" if k == "{p:int}" else k
             for i, k in enumerate(kinds)]  # fmt: skip
    return [*named, "**"] if draw(st.integers(0, 3)) == 0 else named


@st.composite
def request_for(draw: st.DrawFn, segments: list[str]) -> tuple[str, ...]:
    """A request that the pattern matches (or nearly: a value may not fit its type)."""
    path: list[str] = []
    for segment in segments:
        if segment == "**":
            path += draw(st.lists(st.sampled_from(VALUES), max_size=2))
        elif segment.startswith("{") or segment == "*":
            path.append(draw(st.sampled_from(VALUES)))
        else:
            path.append(segment)
    return tuple(path)


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_greedy_matching_equals_full_backtracking(data: st.DataObject) -> None:
    patterns = data.draw(st.lists(pattern(), min_size=1, max_size=10))
    methods = [data.draw(st.sampled_from(["GET", "POST", "ANY"])) for _ in patterns]
    text = "\n".join(
        sorted(
            {
                f"route {m} /{'/'.join(p)} {{ allow anyone }}"
                for m, p in zip(methods, patterns, strict=True)
            }
        )
    )
    try:
        tree = compile_policy_set(parse_text(text)).tree
    except PolicyError:
        return  # routes that conflict: nothing to match
    for segments in patterns:
        path = data.draw(request_for(segments))
        for method in ("GET", "POST", "HEAD"):
            expected = full_walk(tree, path, method)
            got = tree.match(path, method)
            if expected is None:
                assert got is None, (path, method)
            else:
                assert got is not None, (path, method)
                assert (got[0].label, got[1]) == (expected[0].label, expected[1]), (path, method)


def test_a_deep_dead_end_backtracks() -> None:
    tree = compile_policy_set(
        parse_text(
            "route GET /a/{n:int}/x { allow anyone }\n"
            "route GET /a/{s}/y { allow anyone }\n"
            "route GET /a/{s}/sub/{t} { allow anyone }"
        )
    ).tree
    match = tree.match(("a", "5", "y"), "GET")
    assert match is not None and match[0].label == "GET /a/{s}/y" and match[1] == ["5"]
    match = tree.match(("a", "5", "sub", "z"), "GET")
    assert match is not None and match[0].label == "GET /a/{s}/sub/{t}"
    match = tree.match(("a", "5", "x"), "GET")
    assert match is not None and match[0].label == "GET /a/{n:int}/x" and match[1] == [5]


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_matching_without_a_route_equals_a_tree_without_it(data: st.DataObject) -> None:
    """What the lints ask (`lint/public-in-protected`), answered without editing the tree."""
    patterns = data.draw(st.lists(pattern(), min_size=2, max_size=8))
    methods = [data.draw(st.sampled_from(["GET", "POST", "ANY"])) for _ in patterns]
    lines = sorted(
        {
            f"route {m} /{'/'.join(p)} {{ allow anyone }}"
            for m, p in zip(methods, patterns, strict=True)
        }
    )
    dropped = data.draw(st.integers(0, len(lines) - 1))
    try:
        tree = compile_policy_set(parse_text("\n".join(lines))).tree
        rest = compile_policy_set(parse_text("\n".join(lines[:dropped] + lines[dropped + 1 :])))
    except PolicyError:
        return
    label = lines[dropped].removeprefix("route ").removesuffix(" { allow anyone }")
    without = next(r for r in _routes(tree) if r.label == label)
    before = [r.label for r in _routes(tree)]
    for segments in patterns:
        path = data.draw(request_for(segments))
        for method in ("GET", "POST", "HEAD", "PUT"):
            expected = rest.tree.match(path, method)
            got = tree.match_without(path, method, without)
            assert (got.label if got else None) == (expected[0].label if expected else None)
    assert [r.label for r in _routes(tree)] == before  # the tree is as it was


def _routes(tree: DecisionTree) -> list[CompiledRoute]:
    found: list[CompiledRoute] = []
    stack = [tree.root]
    while stack:
        node = stack.pop()
        for endpoint in (node.leaf, node.glob):
            if endpoint is not None:
                found += [*endpoint.by_method.values(), *([endpoint.any] if endpoint.any else [])]
        stack += [*node.static.values(), *node.typed]
        stack += [c for c in (node.param, node.star) if c is not None]
    return sorted(found, key=lambda r: r.label)
