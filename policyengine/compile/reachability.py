"""Which requests reach which route: the tree-based lints (see lints.py for definitions).

Both ask the real decision tree about witness requests, so the lints and the engine can
never disagree about precedence.
"""

from __future__ import annotations

from collections.abc import Iterator

from policyengine import ast
from policyengine.compile.build_tree import build_tree
from policyengine.compile.state import CompiledTarget, CompileState
from policyengine.errors import one_of
from policyengine.patterns import ParamType, PatternSegment, SegmentKind
from policyengine.tree import AllowKind, CompiledRoute, DecisionTree

# A method no route can name: an ANY route is asked about it (it meets only ANY routes).
UNNAMED_METHOD = "PROPFIND"
Request = tuple[str, tuple[str, ...]]  # method, normalized segments


def _lint_tree(state: CompileState) -> DecisionTree:
    """One tree for both lints, and the engine's: the lints only ask it (match_without)."""
    if state.lint_tree is None:
        state.lint_tree = build_tree(state)
    return state.lint_tree


# -- shadowed routes and public holes ------------------------------------------------------


class _Witnesses:
    """Requests that each route target matches, chosen to meet as few other routes as can be."""

    def __init__(self, targets: list[CompiledTarget]) -> None:
        statics = {s.text for t in targets for s in t.pattern.segments if s.text}
        self.text = _fresh("lint-{}", statics)
        self.values = {
            SegmentKind.PARAM: self.text,
            SegmentKind.STAR: self.text,
        }
        self.typed = {
            ParamType.INT: _fresh("7{}", statics),
            ParamType.UUID: _fresh("00000000-0000-4000-8000-{:012d}", statics),
        }
        self.depth = max((len(t.pattern.segments) for t in targets), default=0) + 1

    def requests(self, target: CompiledTarget) -> Iterator[Request]:
        path: list[str] = []
        globbed = False
        for segment in target.pattern.segments:
            if segment.kind is SegmentKind.GLOB:
                globbed = True
            elif segment.kind is SegmentKind.STATIC:
                path.append(segment.text)
            elif segment.kind is SegmentKind.TYPED:
                assert segment.type is not None
                path.append(self.typed[segment.type])
            else:
                path.append(self.values[segment.kind])
        extra = range(self.depth - len(path) + 1) if globbed else range(1)
        for method in _methods(target.target.method):
            for count in extra:
                yield method, (*path, *(self.text,) * count)


def _fresh(template: str, taken: set[str]) -> str:
    return next(v for n in range(len(taken) + 1) if (v := template.format(n)) not in taken)


def _methods(method: ast.Method) -> tuple[str, ...]:
    if method is ast.Method.ANY:
        return (UNNAMED_METHOD,)
    if method is ast.Method.GET:
        return ("GET", "HEAD")  # HEAD falls back to GET routes
    return (method.value,)


def _winner(tree: DecisionTree, request: Request) -> CompiledRoute | None:
    method, segments = request
    match = tree.match(segments, method)
    return match[0] if match is not None else None


def lint_shadowed_routes(state: CompileState) -> None:
    if state.diags.errors:
        return  # conflicting or broken routes: the errors say more than any lint
    targets = state.compiled_targets
    tree = _lint_tree(state)
    witnesses = _Witnesses(targets)
    for target in targets:
        winners = [_winner(tree, request) for request in witnesses.requests(target)]
        if any(w is target.route for w in winners):
            continue
        others = sorted({w.label for w in winners if w is not None})
        state.diags.warning(
            "lint/shadowed-route",
            f"`{target.route.label}` can never be reached: every request it matches "
            f"goes to {one_of(others)}",
            target.target.span,
            "precedence is static > typed > param > `*` > `**`, segment by segment from "
            "the left, then the method; remove this route or give it a path of its own",
        )


def lint_public_in_protected(state: CompileState) -> None:
    if state.diags.errors:
        return
    targets = state.compiled_targets
    public = [(t, rule) for t in targets if (rule := _allow_anyone(t)) is not None]
    if not public:
        return  # the tree and the witnesses are only needed to ask about public routes
    tree = _lint_tree(state)
    witnesses = _Witnesses(targets)
    siblings = _Siblings(targets)
    warned: set[int] = set()  # ids of rules already reported
    for target, rule in public:
        if id(rule) in warned:
            continue
        protector = _carved_from(tree, target, witnesses) or siblings.protecting(target)
        if protector is not None:
            warned.add(id(rule))
            state.diags.warning(
                "lint/public-in-protected",
                f"`allow anyone` on `{target.route.label}`, where {protector}",
                rule.span,
                "make sure this path is meant to be public, or move it out from under a "
                "prefix that is otherwise kept to roles",
            )


def _allow_anyone(target: CompiledTarget) -> ast.AllowAnyone | None:
    return next((r for r in target.flat.route.rules if isinstance(r, ast.AllowAnyone)), None)


def _role_only(route: CompiledRoute) -> bool:
    return bool(route.allows) and all(a.kind is AllowKind.ROLE for a in route.allows)


def _roles_of(route: CompiledRoute) -> str:
    roles = {r for a in route.allows for r in (a.roles or ())}
    return one_of(roles)


def _carved_from(tree: DecisionTree, target: CompiledTarget, witnesses: _Witnesses) -> str | None:
    """The role-only route that would take this route's requests if it were not there."""
    for method, segments in witnesses.requests(target):
        if _winner(tree, (method, segments)) is not target.route:
            continue
        fallback = tree.match_without(segments, method, target.route)
        if fallback is not None and _role_only(fallback):
            return f"`{fallback.label}` admits only roles {_roles_of(fallback)}"
    return None


class _Siblings:
    """The routes under each static parent path: looked up, not searched for each route."""

    def __init__(self, targets: list[CompiledTarget]) -> None:
        self.under: dict[tuple[PatternSegment, ...], list[CompiledRoute]] = {}
        for target in targets:
            segments = target.pattern.segments
            if segments:
                self.under.setdefault(segments[:-1], []).append(target.route)

    def protecting(self, target: CompiledTarget) -> str | None:
        """At least two routes beside this one under its static parent, all kept to roles."""
        parent = target.pattern.segments[:-1]
        if not parent or any(s.kind is not SegmentKind.STATIC for s in parent):
            return None
        siblings = [r for r in self.under.get(parent, ()) if r is not target.route]
        if len(siblings) < 2 or not all(_role_only(s) for s in siblings):
            return None
        prefix = "/" + "/".join(s.text for s in parent)
        return f"every other route under `{prefix}/` admits only named roles"
