"""The decision tree: a segment trie of routes with their compiled rules. Immutable.

Matching walks one path of the trie. At each level it tries children in precedence
order (static > typed > param > `*` > `**`) and backtracks only when a deeper level
fails, so the cost depends on the request's depth, never on the number of routes.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any, Final

from policyengine.authenticator import Authenticator
from policyengine.context import RequestContext
from policyengine.hosts import HostSet
from policyengine.ratelimit.bans import BanPlan
from policyengine.ratelimit.plan import LimitPlan
from policyengine.request import InputError

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
    scopes: frozenset[str] | None = None  # OAuth2 scopes the identity must all hold
    scope_text: str = ""  # the scopes as RFC 6750 §3.1 `scope="..."` lists them

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
class CompiledRoute:
    # In this order: compiled, the first five fields share a cache line with the refcount
    # (as in Node), and a decision on a `plain` route reads no other.
    label: str  # "DELETE /api/orders/{id:int}"
    allows: tuple[AllowRule, ...]
    denies: tuple[DenyRule, ...]
    authenticators: tuple[Authenticator, ...]
    needs_identity: bool  # no allow rule can match an anonymous caller (step 3: 401)
    plain: bool  # no limits, no body or query schema: steps 5 and 6 have nothing to do
    site: str
    param_names: tuple[str, ...]
    body: InputSpec | None
    query: InputSpec | None
    limits: LimitPlan | None  # None: the route has no limits
    bans: BanPlan | None  # None: no ban guards the route (checked before authentication)
    hosts: HostSet | None = None  # its group's or its own `host`; None: any host


class Endpoint:
    """The routes ending at one trie position, by method."""

    __slots__ = ("any", "by_method")

    def __init__(self) -> None:
        self.by_method: dict[str, CompiledRoute] = {}
        self.any: CompiledRoute | None = None

    def for_method(self, method: str, without: CompiledRoute | None = None) -> CompiledRoute | None:
        """The route for `method`; `without`: as if that route were not here (lints)."""
        route = self.by_method.get(method)
        if route is not None and route is not without:
            return route
        if method == "HEAD":  # HEAD is GET without a body (RFC 9110 §9.3.2)
            route = self.by_method.get("GET")
            if route is not None and route is not without:
                return route
        return self.any if self.any is not without else None


# Shared by every node without static children, or without routes: never written.
_NO_STATIC: Final[dict[str, Node]] = {}
_NO_METHODS: Final[dict[str, CompiledRoute]] = {}


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
        "only_child",
        "only_segment",
        "param",
        "star",
        "static",
        "typed",
    )

    def __init__(self, convert: Converter = _fits_nothing) -> None:
        # Compiled, a Node fills one 128-byte pymalloc block, laid out in the order its
        # fields are first assigned here; the block's second cache line holds the refcount
        # and the first five fields. Those are what a step of the greedy walk reads, so a
        # step pulls in one line of the node, not two (at 10,000 routes most nodes are cold).
        # set by seal(): the lone static child, followed without reading a dict ("" when
        # there are none or several: no segment is empty)
        self.only_segment = ""
        self.only_child: Node | None = None
        # set by seal(): whether a lower-precedence branch exists to fall back to
        self.check_static = False
        self.check_typed = False
        # set by seal(): whether a path may end here, and the leaf's own by_method table
        # (the same dict, so that edits to the endpoint show): a hit reads one object less
        self.ends = False
        self.methods: dict[str, CompiledRoute] = _NO_METHODS
        self.convert = convert  # a typed child's: the value of a segment, or None
        self.static: dict[str, Node] = {}
        self.typed: tuple[Node, ...] = ()  # typed children, in ParamType order
        self.param: Node | None = None
        self.star: Node | None = None
        self.glob: Endpoint | None = None  # routes ending in `**` below this node
        self.leaf: Endpoint | None = None  # routes ending exactly here

    def seal(self) -> None:
        """Record, once the tree is built, where the greedy walk must look ahead."""
        lower = self.param is not None or self.star is not None or self.glob is not None
        self.check_typed = lower or len(self.typed) > 1
        self.check_static = lower or bool(self.typed)
        self.ends = self.leaf is not None or self.glob is not None
        self.methods = self.leaf.by_method if self.leaf is not None else _NO_METHODS
        if len(self.static) == 1:
            segment, only = next(iter(self.static.items()))
            # interned: every node whose lone child is `items` compares with one string
            self.only_segment, self.only_child = sys.intern(segment), only
        # leaves share one empty table: fewer objects for a request to pull into cache
        self.static = self.static or _NO_STATIC
        for child in (*self.static.values(), *self.typed, self.param, self.star):
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
            if segment == node.only_segment:
                child = node.only_child
            elif node.only_child is None:  # no static child, or several
                child = node.static.get(segment)
            else:
                child = None
            if child is not None and (
                not node.check_static
                or (child.ends if i == last else _viable(child, segments[i + 1]))
            ):
                node = child
                continue
            for typed_child in node.typed:
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

    def match_without(
        self, segments: tuple[str, ...], method: str, without: CompiledRoute
    ) -> CompiledRoute | None:
        """The route a request would go to if `without` were not in the tree: what the
        lints ask, answered by the same walk and without editing the tree."""
        return _walk(self.root, segments, 0, method, [], without)


def _viable(node: Node, segment: str) -> bool:
    """Whether `node` can take the next segment: one step of lookahead (at the end of the
    path, `node.ends` says whether it can end it)."""
    return (
        segment == node.only_segment
        or (node.only_child is None and segment in node.static)
        or bool(node.typed)
        or node.param is not None
        or node.star is not None
        or node.glob is not None
    )


def _walk(
    node: Node,
    segments: tuple[str, ...],
    i: int,
    method: str,
    captures: list[Any],
    without: CompiledRoute | None = None,
) -> CompiledRoute | None:
    if i == len(segments):
        route = node.leaf.for_method(method, without) if node.leaf else None
        if route is None and node.glob is not None:
            route = node.glob.for_method(method, without)
        return route
    segment = segments[i]
    child = node.static.get(segment)
    if child is not None:
        route = _walk(child, segments, i + 1, method, captures, without)
        if route is not None:
            return route
    for typed_child in node.typed:
        value = typed_child.convert(segment)
        if value is not None:
            captures.append(value)
            route = _walk(typed_child, segments, i + 1, method, captures, without)
            if route is not None:
                return route
            captures.pop()
    if node.param is not None:
        captures.append(segment)
        route = _walk(node.param, segments, i + 1, method, captures, without)
        if route is not None:
            return route
        captures.pop()
    if node.star is not None:
        route = _walk(node.star, segments, i + 1, method, captures, without)
        if route is not None:
            return route
    return node.glob.for_method(method, without) if node.glob is not None else None
