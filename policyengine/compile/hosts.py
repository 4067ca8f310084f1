"""The `check-hosts` pass: every `host` line canonical, once per place, and inside the
hosts of what encloses it.

A set's own `host` (a top-level statement, once in the whole set) is checked before any
route is matched; a group's or a route's replaces it for the routes inside, and may
only narrow it: a route cannot serve a host its group or its policy set does not.
"""

from __future__ import annotations

from collections.abc import Iterator

from policyengine import ast
from policyengine.compile.state import CompileState, FlatRoute
from policyengine.hosts import BadHost, HostSet, policy_host


def check_hosts(state: CompileState) -> None:
    top = [s for f in state.policy_set.files for s in f.statements if isinstance(s, ast.HostDecl)]
    for decl in _every_decl(state):
        _host_set(state, decl)
    for extra in top[1:]:
        state.diags.error(
            "compile/duplicate-host",
            f"the set names its hosts twice (first at {top[0].span.location()})",
            extra.span,
            "list every host on one `host` line",
        )
    state.set_hosts = state.host_sets.get(top[0]) if top else None
    for group in _groups_of(state):
        for extra in [i for i in group.items if isinstance(i, ast.HostDecl)][1:]:
            _twice(state, extra, "group")
    for flat in state.routes:
        own = [r for r in flat.route.rules if isinstance(r, ast.HostDecl)]
        for extra in own[1:]:
            _twice(state, extra, "route")
        _check_narrowing(state, [*flat.groups_hosts, *own[:1]])


def route_hosts(state: CompileState, flat: FlatRoute) -> HostSet | None:
    """The hosts a route serves when its group or itself names them (None: the set's
    hosts, checked before matching, or any host)."""
    own = next((r for r in flat.route.rules if isinstance(r, ast.HostDecl)), None)
    innermost = own or (flat.groups_hosts[-1] if flat.groups_hosts else None)
    return state.host_sets.get(innermost) if innermost is not None else None


def _host_set(state: CompileState, decl: ast.HostDecl) -> None:
    patterns = []
    for name in decl.hosts:
        try:
            patterns.append(policy_host(name.value))
        except BadHost as err:
            state.diags.error(
                "compile/bad-host",
                f"`{name.value}` is not a host: {err}",
                name.span,
                "a host is a name, an IP address or `*.name`, with an optional port: "
                '`host "api.example.test", "*.example.test:8443"`',
            )
    if len(patterns) == len(decl.hosts):
        state.host_sets[decl] = HostSet.of(patterns)


def _check_narrowing(state: CompileState, chain: list[ast.HostDecl]) -> None:
    """Each declaration inside the one that encloses it (the set's first)."""
    outer = state.set_hosts
    for decl in chain:
        inner = state.host_sets.get(decl)
        if inner is None:
            continue
        if outer is not None and not outer.covers(inner):
            state.diags.error(
                "compile/host-outside",
                f"hosts `{inner.text}` are not all among the enclosing hosts `{outer.text}`",
                decl.span,
                "a group or a route may only narrow the hosts around it",
            )
        outer = inner


def _twice(state: CompileState, decl: ast.HostDecl, where: str) -> None:
    state.diags.error(
        "compile/duplicate-host",
        f"this {where} names its hosts twice",
        decl.span,
        "list every host on one `host` line",
    )


def _every_decl(state: CompileState) -> Iterator[ast.HostDecl]:
    for file in state.policy_set.files:
        yield from (s for s in file.statements if isinstance(s, ast.HostDecl))
    for group in _groups_of(state):
        yield from (i for i in group.items if isinstance(i, ast.HostDecl))
    for flat in state.routes:
        yield from (r for r in flat.route.rules if isinstance(r, ast.HostDecl))


def _groups_of(state: CompileState) -> Iterator[ast.Group]:
    stack: list[object] = [s for f in state.policy_set.files for s in f.statements]
    while stack:
        item = stack.pop()
        if isinstance(item, ast.Group):
            yield item
            stack.extend(item.items)
