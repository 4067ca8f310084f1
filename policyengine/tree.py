"""The decision tree: a segment trie of routes with their compiled rules. Immutable.

Matching walks one path of the trie. At each level it tries children in precedence
order (static > typed > param > `*` > `**`) and backtracks only when a deeper level
fails, so the cost depends on the request's depth, never on the number of routes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from policyengine.authn import Authenticator
from policyengine.context import RequestContext
from policyengine.decision import InputError

Condition = Callable[[RequestContext], bool]
Converter = Callable[[str], Any]  # a typed segment's value, or None when it does not fit


class AllowKind(Enum):
    ANYONE = "anyone"
    AUTHENTICATED = "authenticated"
    ROLE = "role"
    WHEN = "when"


@dataclass(frozen=True, slots=True)
class AllowRule:
    kind: AllowKind
    roles: frozenset[str] | None  # every role that satisfies it, inheritance folded in
    condition: Condition | None
    site: str  # file:line
    text: str  # the rule as written, for traces

    @property
    def needs_identity(self) -> bool:
        return self.kind in (AllowKind.AUTHENTICATED, AllowKind.ROLE)


@dataclass(frozen=True, slots=True)
class DenyRule:
    roles: frozenset[str] | None
    condition: Condition | None
    site: str
    text: str


@dataclass(frozen=True, slots=True)
class InputSpec:
    """A body or query schema check, compiled once."""

    schema: str
    max_bytes: int
    validate: Callable[[Any], tuple[InputError, ...]]
    fields: tuple[str, ...] = ()  # top-level field names, for compile-time reference checks
    open_fields: bool = False  # `...`: unknown fields allowed


@dataclass(frozen=True, slots=True)
class LimitSpec:
    """A named rate limit as the limiter needs it."""

    name: str
    count: int
    period: float
    burst: int | None
    keys: tuple[tuple[str, str | None], ...]  # (kind, arg) from LANGUAGE.md's `by`
    site: str


@dataclass(frozen=True, slots=True)
class CompiledRoute:
    label: str  # "DELETE /api/orders/{id:int}"
    site: str
    param_names: tuple[str, ...]
    allows: tuple[AllowRule, ...]
    denies: tuple[DenyRule, ...]
    authenticators: tuple[Authenticator, ...]
    body: InputSpec | None
    query: InputSpec | None
    limits: tuple[LimitSpec, ...]
    needs_identity: bool  # no allow rule can match an anonymous caller (step 3: 401)


class Endpoint:
    """The routes ending at one trie position, by method."""

    __slots__ = ("any", "by_method")

    def __init__(self) -> None:
        self.by_method: dict[str, CompiledRoute] = {}
        self.any: CompiledRoute | None = None

    def for_method(self, method: str) -> CompiledRoute | None:
        route = self.by_method.get(method)
        if route is not None:
            return route
        if method == "HEAD":  # HEAD is GET without a body (RFC 9110 §9.3.2)
            route = self.by_method.get("GET")
            if route is not None:
                return route
        return self.any


# Shared by every node without static children, or without routes: never written.
_NO_STATIC: dict[str, Node] = {}
_NO_METHODS: dict[str, CompiledRoute] = {}


def _fits_nothing(segment: str) -> None:
    """The converter of a node that is no typed child: no segment has a value for it."""
    return None


class Node:
    __slots__ = (
        "check_static",
        "check_typed",
        "convert",
        "ends",
        "glob",
        "leaf",
        "methods",
        "param",
        "star",
        "static",
        "typed",
        "typed_nodes",
    )

    def __init__(self) -> None:
        self.static: dict[str, Node] = {}
        self.typed: Sequence[tuple[Converter, Node]] = []  # in ParamType order
        self.param: Node | None = None
        self.star: Node | None = None
        self.glob: Endpoint | None = None  # routes ending in `**` below this node
        self.leaf: Endpoint | None = None  # routes ending exactly here
        # set by seal(): whether a lower-precedence branch exists to fall back to
        self.check_static = False
        self.check_typed = False
        # set by seal(): whether a path may end here, and the leaf's own by_method table
        # (the same dict, so that edits to the endpoint show): a hit reads one object less
        self.ends = False
        self.methods: dict[str, CompiledRoute] = _NO_METHODS
        # set by seal(): the typed children alone, each knowing the converter of its edge,
        # so that trying one reads no (converter, node) pair
        self.typed_nodes: tuple[Node, ...] = ()
        self.convert: Converter = _fits_nothing

    def seal(self) -> None:
        """Record, once the tree is built, where the greedy walk must look ahead."""
        lower = self.param is not None or self.star is not None or self.glob is not None
        self.check_typed = lower or len(self.typed) > 1
        self.check_static = lower or bool(self.typed)
        self.ends = self.leaf is not None or self.glob is not None
        self.methods = self.leaf.by_method if self.leaf is not None else _NO_METHODS
        # leaves share one empty table: fewer objects for a request to pull into cache
        self.static = self.static or _NO_STATIC
        self.typed = tuple(self.typed)
        self.typed_nodes = tuple(child for _, child in self.typed)
        for convert, typed_child in self.typed:
            typed_child.convert = convert
        for child in (*self.static.values(), *(c for _, c in self.typed), self.param, self.star):
            if child is not None:
                child.seal()


Match = tuple[CompiledRoute, list[Any]]  # the route and its captured parameter values


class DecisionTree:
    """The route trie. A match walks it once greedily (what precedence picks when no
    branch dead-ends) and backtracks only when the greedy walk dead-ends."""

    __slots__ = ("root",)

    def __init__(self, root: Node) -> None:
        root.seal()
        self.root = root

    def endpoint(self, segments: tuple[str, ...]) -> Endpoint | None:
        """The endpoint of a fully static path (for tools and tests)."""
        node: Node | None = self.root
        for segment in segments:
            node = node.static.get(segment) if node is not None else None
        return node.leaf if node is not None else None

    def match(self, segments: tuple[str, ...], method: str) -> Match | None:
        """Follow the best child at every level without backtracking: what _walk finds
        first when no branch dead-ends, at a fraction of its cost. Only when this greedy
        walk dead-ends does _walk backtrack.

        Where a node offers a fallback, a child that cannot take the next segment is
        passed over (one segment of lookahead): _walk would fail in it and fall back the
        same way. One loop, no helper calls for the common steps: this runs per request.
        """
        node = self.root
        captures: list[Any] = []
        last = len(segments) - 1
        for i, segment in enumerate(segments):
            child = node.static.get(segment)
            if child is not None and (
                not node.check_static
                or (child.ends if i == last else _viable(child, segments[i + 1]))
            ):
                node = child
                continue
            for typed_child in node.typed_nodes:
                value = typed_child.convert(segment)
                if value is not None and (
                    not node.check_typed
                    or (typed_child.ends if i == last else _viable(typed_child, segments[i + 1]))
                ):
                    captures.append(value)
                    node = typed_child
                    break
            else:
                if node.param is not None:
                    captures.append(segment)
                    node = node.param
                elif node.star is not None:
                    node = node.star
                else:
                    return self._backtrack(segments, method)
        route = node.methods.get(method)  # the common hit: no call, no Endpoint read
        if route is None:
            leaf = node.leaf
            route = leaf.for_method(method) if leaf is not None else None
            if route is None:
                return self._backtrack(segments, method)
        return route, captures

    def _backtrack(self, segments: tuple[str, ...], method: str) -> Match | None:
        captures: list[Any] = []
        route = _walk(self.root, segments, 0, method, captures)
        return (route, captures) if route is not None else None


def _viable(node: Node, segment: str) -> bool:
    """Whether `node` can take the next segment: one step of lookahead (at the end of the
    path, `node.ends` says whether it can end it)."""
    return (
        segment in node.static
        or bool(node.typed)
        or node.param is not None
        or node.star is not None
        or node.glob is not None
    )


def _walk(
    node: Node, segments: tuple[str, ...], i: int, method: str, captures: list[Any]
) -> CompiledRoute | None:
    if i == len(segments):
        route = node.leaf.for_method(method) if node.leaf else None
        if route is None and node.glob is not None:
            route = node.glob.for_method(method)
        return route
    segment = segments[i]
    child = node.static.get(segment)
    if child is not None:
        route = _walk(child, segments, i + 1, method, captures)
        if route is not None:
            return route
    for convert, typed_child in node.typed:
        value = convert(segment)
        if value is not None:
            captures.append(value)
            route = _walk(typed_child, segments, i + 1, method, captures)
            if route is not None:
                return route
            captures.pop()
    if node.param is not None:
        captures.append(segment)
        route = _walk(node.param, segments, i + 1, method, captures)
        if route is not None:
            return route
        captures.pop()
    if node.star is not None:
        route = _walk(node.star, segments, i + 1, method, captures)
        if route is not None:
            return route
    return node.glob.for_method(method) if node.glob is not None else None
