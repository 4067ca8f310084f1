"""`policyengine diff`: what changed between two policy sets, route by route, and whether
each change widens (lets through some caller that was refused before).

Routes are paired by method and path shape (the names of path parameters do not count).
A route added or removed is compared with the route its paths reached on the other side,
if any: carving `DELETE /api/admin/users/{id}` out of `ANY /api/admin/**` is judged
against the glob, not against nothing. Where widening cannot be proved either way (a
condition rewritten, a schema changed in a way `schemas.narrower` cannot follow), the
change counts as widening: `--fail-on-widen` fails closed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum
from typing import Any

from policyengine.analysis.access import (
    ANYONE,
    AUTHENTICATED,
    DENIED,
    Grant,
    Principal,
    narrower,
    role_principal,
)
from policyengine.analysis.schemas import schema_delta, schema_narrower
from policyengine.analysis.summary import (
    BanSummary,
    InputSummary,
    LimitSummary,
    PolicySummary,
    RouteSummary,
)

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")  # what ANY stands for


class ChangeKind(Enum):
    ACCESS = "access"
    LIMIT = "limit"
    BAN = "ban"  # a brute-force ban added (narrows), dropped or loosened (widens)
    INPUT = "input"
    AUTHN = "authn"
    HOST = "host"  # the hosts a route serves
    HARDENING = "hardening"  # a `permit` added or removed: the whole set, route "*"
    ADDED = "added"
    REMOVED = "removed"


_KIND_ORDER = {kind: i for i, kind in enumerate(ChangeKind)}


@dataclass(frozen=True, slots=True)
class Change:
    route: str  # "METHOD TEMPLATE", as the new set writes it when it has the route
    kind: ChangeKind
    widens: bool
    before: Any  # JSON-ready: what the old set does (None: nothing)
    after: Any

    def to_json(self) -> dict[str, Any]:
        return {
            "route": self.route,
            "kind": self.kind.value,
            "widens": self.widens,
            "before": self.before,
            "after": self.after,
        }


def diff(old: PolicySummary, new: PolicySummary) -> tuple[Change, ...]:
    principals = _principals(old, new)
    before = {route.key: route for route in old.routes}
    after = {route.key: route for route in new.routes}
    changes: list[Change] = []
    for key in before.keys() | after.keys():
        was, now = before.get(key), after.get(key)
        if was is None:
            assert now is not None
            changes.append(_added(now, old, principals))
        elif now is None:
            changes.append(_removed(was, new, principals))
        else:
            changes.extend(_route_changes(was, now, principals))
    if old.permits != new.permits:  # every route reads the request the new way
        widens = not set(new.permits) <= set(old.permits)
        changes.append(
            Change("*", ChangeKind.HARDENING, widens, list(old.permits), list(new.permits))
        )
    return tuple(sorted(changes, key=_order))


def _order(change: Change) -> tuple[str, int, str]:
    return (change.route, _KIND_ORDER[change.kind], json.dumps(change.before, sort_keys=True))


def _principals(old: PolicySummary, new: PolicySummary) -> tuple[Principal, ...]:
    """Each role of either side (a role one side lacks is, there, a role no rule names),
    anyone and authenticated. Scopes need no column: they are atoms of the grants."""
    roles = dict.fromkeys((*old.roles, *new.roles))
    return (*(role_principal(r) for r in roles), ANYONE, AUTHENTICATED)


def _route_changes(
    was: RouteSummary, now: RouteSummary, principals: tuple[Principal, ...]
) -> Iterator[Change]:
    label = now.label
    access = _access_change(label, was, now, principals)
    if access is not None:
        yield access
    yield from _limit_changes(label, was.limits, now.limits)
    ban = _ban_change(label, was.bans, now.bans)
    if ban is not None:
        yield ban
    for part in ("body", "query"):
        change = _input_change(label, part, getattr(was, part), getattr(now, part))
        if change is not None:
            yield change
    yield from _authn_changes(label, was, now)
    host = _host_change(label, was, now)
    if host is not None:
        yield host


def _host_change(label: str, was: RouteSummary, now: RouteSummary) -> Change | None:
    """Hosts that are not all among the old ones widen (None: any host)."""
    old, new = was.hosts, now.hosts
    if old == new:
        return None
    widens = new is None or (old is not None and not old.covers(new))
    return Change(label, ChangeKind.HOST, widens, old.text if old else "any host",
                  new.text if new else "any host")  # fmt: skip


def _access_change(
    label: str, was: RouteSummary, now: RouteSummary, principals: tuple[Principal, ...]
) -> Change | None:
    before: dict[str, str] = {}
    after: dict[str, str] = {}
    widens = False
    for who in principals:
        old_grant, new_grant = was.grant(who), now.grant(who)
        if old_grant != new_grant:
            before[who.name], after[who.name] = old_grant.describe(), new_grant.describe()
            widens = widens or not narrower(old_grant, new_grant)
    if not before:
        return None
    return Change(label, ChangeKind.ACCESS, widens, before, after)


# --- routes added and removed -------------------------------------------------------------


def _reached(route: RouteSummary, other: PolicySummary) -> list[RouteSummary | None]:
    """For each method `route` serves, the route of `other` its paths reach, if any."""
    labels = other.by_label()
    found: list[RouteSummary | None] = []
    for method in METHODS if route.method == "ANY" else (route.method,):
        match = other.tree.match(route.sample, method)
        found.append(labels.get(match[0].label) if match is not None else None)
    return found


def _grants(route: RouteSummary | None, principals: tuple[Principal, ...]) -> list[Grant]:
    return [route.grant(p) if route is not None else DENIED for p in principals]


def _wider(
    route: RouteSummary, others: list[RouteSummary | None], principals: tuple[Principal, ...]
) -> bool:
    """Whether `route` admits a request that one of `others` (None: no route) refused."""
    grants = _grants(route, principals)
    return any(
        not narrower(was, now)
        for other in others
        for was, now in zip(_grants(other, principals), grants, strict=True)
    )


def _narrower_than_all(
    route: RouteSummary, others: list[RouteSummary | None], principals: tuple[Principal, ...]
) -> bool:
    """Whether none of `others` (None: no route) admits a request `route` refused."""
    grants = _grants(route, principals)
    return all(
        narrower(was, now)
        for other in others
        for was, now in zip(grants, _grants(other, principals), strict=True)
    )


def _state(route: RouteSummary, principals: tuple[Principal, ...], reached: bool) -> Any:
    state: dict[str, Any] = {
        "access": {p.name: route.grant(p).describe() for p in principals},
        "limits": [limit.describe() for limit in route.limits],
    }
    return {"reached": route.label, **state} if reached else state


def _first(routes: list[RouteSummary | None]) -> RouteSummary | None:
    return next((r for r in routes if r is not None), None)


def _added(now: RouteSummary, old: PolicySummary, principals: tuple[Principal, ...]) -> Change:
    fallbacks = _reached(now, old)
    widens = _wider(now, fallbacks, principals)
    fallback = _first(fallbacks)
    before = _state(fallback, principals, reached=True) if fallback is not None else None
    return Change(now.label, ChangeKind.ADDED, widens, before, _state(now, principals, False))


def _removed(was: RouteSummary, new: PolicySummary, principals: tuple[Principal, ...]) -> Change:
    fallbacks = _reached(was, new)
    widens = not _narrower_than_all(was, fallbacks, principals)
    fallback = _first(fallbacks)
    after = _state(fallback, principals, reached=True) if fallback is not None else None
    return Change(was.label, ChangeKind.REMOVED, widens, _state(was, principals, False), after)


# --- limits, input, authn -----------------------------------------------------------------


def _ban_change(
    label: str, was: tuple[BanSummary, ...], now: tuple[BanSummary, ...]
) -> Change | None:
    """One change for the route's bans: it widens when some old ban is no longer matched
    by a new one at least as strict (a caller the old bans stopped may go on guessing)."""

    def settings(bans: tuple[BanSummary, ...]) -> set[tuple[Any, ...]]:
        return {(b.count, b.period, b.keys, b.ban, b.statuses) for b in bans}

    if settings(was) == settings(now):  # renamed but equal: no change
        return None
    widens = any(not any(n.at_least_as_strict_as(old) for n in now) for old in was)
    before = [b.describe() for b in was] or None
    after = [b.describe() for b in now] or None
    return Change(label, ChangeKind.BAN, widens, before, after)


def _limit_changes(
    label: str, was: tuple[LimitSummary, ...], now: tuple[LimitSummary, ...]
) -> Iterator[Change]:
    old, new = list(was), list(now)
    for limit in was:  # the same numbers and keys under another name: no change
        same = next((n for n in new if n.settings == limit.settings), None)
        if same is not None:
            old.remove(limit)
            new.remove(same)
    for limit in old:
        renamed = next((n for n in new if n.name == limit.name), None)
        if renamed is None:
            yield Change(label, ChangeKind.LIMIT, True, limit.describe(), None)
            continue
        new.remove(renamed)
        widens = _limit_widens(limit, renamed)
        yield Change(label, ChangeKind.LIMIT, widens, limit.describe(), renamed.describe())
    for limit in new:
        yield Change(label, ChangeKind.LIMIT, False, None, limit.describe())


def _limit_widens(was: LimitSummary, now: LimitSummary) -> bool:
    """More requests at once, a faster rate, or keys that split callers more finely."""
    capacity = (now.burst or now.count) > (was.burst or was.count)
    rate = now.count / now.period > was.count / was.period
    keys = now.keys != was.keys and not set(now.keys) < set(was.keys)
    return capacity or rate or keys


def _input_change(
    label: str, part: str, was: InputSummary | None, now: InputSummary | None
) -> Change | None:
    if was is not None and now is not None:
        if (was.document, was.max_bytes) == (now.document, now.max_bytes):
            return None  # equal schemas under any name
        widens = (now.max_bytes or 0) > (was.max_bytes or 0) or (
            was.document != now.document and not schema_narrower(was.document, now.document)
        )
    elif was is None and now is None:
        return None
    else:
        widens = now is None  # a check dropped lets through what it refused
    before: dict[str, Any] | None = {part: was.describe()} if was is not None else None
    after: dict[str, Any] | None = {part: now.describe()} if now is not None else None
    if was is not None and now is not None and before is not None and after is not None:
        before["schema"], after["schema"] = schema_delta(was.document, now.document)
    return Change(label, ChangeKind.INPUT, widens, before, after)


def _authn_changes(label: str, was: RouteSummary, now: RouteSummary) -> Iterator[Change]:
    """A block added to a route, or any setting of one changed, may accept a credential
    it refused; a block removed accepts nothing more."""
    old = {block.label: block for block in was.authn}
    new = {block.label: block for block in now.authn}
    for name in sorted(old.keys() | new.keys()):
        before, after = old.get(name), new.get(name)
        if before == after:
            continue
        yield Change(
            label,
            ChangeKind.AUTHN,
            after is not None,
            before.describe() if before is not None else None,
            after.describe() if after is not None else None,
        )
