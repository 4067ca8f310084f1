"""The synthetic RBAC workload that bench/decide.py runs through every engine.

N routes = N/5 services, each with the same five route shapes; services are
grouped ten to a group, and each group has the role chain viewer < editor <
admin (each inherits the one before). Calls are drawn with a fixed seed: a
route of a random service called by a user of its own group (allowed or denied
by role level) or of another group (denied), plus unmatched paths, calls
without a key and calls with an unknown key.

Every path parameter in a call is an integer and no path has empty or dot
segments: within that set, `{id:int}`, casbin's keyMatch2 `:id`, Cedar's
`like` and our Rego agree, so every engine can be held to the same answers.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from policyengine.loader import MAX_POLICY_BYTES

SERVICES_PER_GROUP = 10
LEVELS = ("viewer", "editor", "admin")  # each level inherits the one before it
ANONYMOUS = "anonymous"  # the subject peers get when policyengine finds no valid key
_SHAPES = (  # (method, path below /api/svc{i}, role level)
    ("GET", "items", "viewer"),
    ("POST", "items", "editor"),
    ("GET", "items/{id:int}", "viewer"),
    ("DELETE", "items/{id:int}", "admin"),
    ("GET", "items/{id}/sub/{sub}", "editor"),
)
ROUTES_PER_SERVICE = len(_SHAPES)
_SUB_NAMES = ("notes", "tags", "history", "owners")


class CallKind(Enum):
    ROUTE = "route"  # a call to a route, by a user with a valid key
    UNMATCHED = "unmatched"  # no route matches the path or the method
    NO_KEY = "no key"
    BAD_KEY = "unknown key"


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    segments: tuple[str, ...]  # parameters as in the policy language: `{id}`, `{id:int}`
    role: str

    @property
    def template(self) -> str:
        return "/" + "/".join(self.segments)


def param_type(segment: str) -> str | None:
    """None for a static segment, "" for `{name}`, the type for `{name:type}`."""
    if not segment.startswith("{"):
        return None
    _, _, kind = segment[1:-1].partition(":")
    return kind


@dataclass(frozen=True, slots=True)
class User:
    subject: str
    key: str  # the plaintext API key; only its sha256 goes into the keys file
    role: str


@dataclass(frozen=True, slots=True)
class Call:
    """One request of the workload, with the answer the policy must give."""

    kind: CallKind
    method: str
    path: str
    key: str | None  # the X-API-Key header policyengine gets (None: no header)
    subject: str  # what the peers get instead: the key's subject, or ANONYMOUS
    expected_allow: bool


@dataclass(frozen=True, slots=True)
class Workload:
    routes: tuple[Route, ...]
    roles: tuple[tuple[str, str | None], ...]  # (role, the role it inherits)
    users: tuple[User, ...]
    calls: tuple[Call, ...]
    inherited: Mapping[str, frozenset[str]]  # each role with every role it inherits


def _inheritance(roles: tuple[tuple[str, str | None], ...]) -> dict[str, frozenset[str]]:
    parents = dict(roles)
    inherited: dict[str, frozenset[str]] = {}
    for role, _ in roles:
        found: list[str] = []
        current: str | None = role
        while current is not None:
            found.append(current)
            current = parents[current]
        inherited[role] = frozenset(found)
    return inherited


def role_name(group: int, level: str) -> str:
    return f"g{group}-{level}"


def make_workload(n_routes: int, n_calls: int, seed: int) -> Workload:
    if n_routes % ROUTES_PER_SERVICE:
        raise ValueError(f"route count must be a multiple of {ROUTES_PER_SERVICE}")
    rng = random.Random(seed)
    services = n_routes // ROUTES_PER_SERVICE
    groups = max(2, -(-services // SERVICES_PER_GROUP))  # two at least: "another group" exists
    routes = tuple(
        Route(method, ("api", f"svc{i}", *rest.split("/")), role_name(i % groups, level))
        for i in range(services)
        for method, rest, level in _SHAPES
    )
    roles = tuple(
        (role_name(g, level), role_name(g, LEVELS[n - 1]) if n else None)
        for g in range(groups)
        for n, level in enumerate(LEVELS)
    )
    users = tuple(
        User(f"user-{role}", f"key-{rng.getrandbits(128):032x}", role) for role, _ in roles
    )
    workload = Workload(routes, roles, users, (), _inheritance(roles))
    by_group: dict[str, list[User]] = {}
    for user in users:
        by_group.setdefault(_group_of(user.role), []).append(user)
    calls = tuple(_make_call(workload, by_group, services, rng) for _ in range(n_calls))
    return Workload(routes, roles, users, calls, workload.inherited)


def _group_of(role: str) -> str:
    return role.partition("-")[0]


def _make_call(
    w: Workload, by_group: dict[str, list[User]], services: int, rng: random.Random
) -> Call:
    roll = rng.random()
    user = rng.choice(w.users)
    if roll < 0.10:
        method, path = _unmatched(w, services, rng)
        return Call(CallKind.UNMATCHED, method, path, user.key, user.subject, False)
    route = rng.choice(w.routes)
    path = _concrete_path(route, rng)
    if roll < 0.14:
        return Call(CallKind.NO_KEY, route.method, path, None, ANONYMOUS, False)
    if roll < 0.17:
        key = f"key-{rng.getrandbits(128):032x}"
        return Call(CallKind.BAD_KEY, route.method, path, key, ANONYMOUS, False)
    if rng.random() < 0.7:  # mostly users of the route's own group, at a random level
        user = rng.choice(by_group[_group_of(route.role)])
    allowed = route.role in w.inherited[user.role]
    return Call(CallKind.ROUTE, route.method, path, user.key, user.subject, allowed)


def _concrete_path(route: Route, rng: random.Random) -> str:
    parts = []
    for segment in route.segments:
        kind = param_type(segment)
        if kind is None:
            parts.append(segment)
        elif segment == "{sub}":
            parts.append(rng.choice(_SUB_NAMES))
        else:
            parts.append(str(rng.randrange(1, 10**6)))
    return "/" + "/".join(parts)


def _unmatched(w: Workload, services: int, rng: random.Random) -> tuple[str, str]:
    item = rng.randrange(1, 10**6)
    i = rng.randrange(services)
    return rng.choice(
        (
            ("GET", f"/api/svc{services + rng.randrange(1, 100)}/items/{item}"),  # no service
            ("GET", f"/api/svc{i}/orders/{item}"),  # no such collection
            ("GET", f"/api/svc{i}/items/{item}/sub"),  # one segment short
            ("GET", f"/api/svc{i}/items/{item}/sub/notes/extra"),  # one segment too many
            ("PATCH", f"/api/svc{i}/items/{item}"),  # no route for the method
            ("GET", "/health"),
        )
    )


# never refuses: what a limit costs when it admits, the common case
ROOMY = "limit roomy 1000000 per second by subject burst 1000000"


def policy_text(w: Workload, *, limited: bool = False) -> str:
    lines = [
        f'policy "bench-{len(w.routes)}"',
        "",
        "authn api_key {",
        '    header "X-API-Key"',
        '    keys file "keys.yaml"',
        "}",
        "",
    ]
    if limited:
        lines += [ROOMY, ""]
    for role, parent in w.roles:
        lines.append(f"role {role} inherits {parent}" if parent else f"role {role}")
    for route in w.routes:
        lines += ["", f"route {route.method} {route.template} {{", f"    allow role {route.role}"]
        lines += ["    limit roomy", "}"] if limited else ["}"]
    return "\n".join(lines) + "\n"


def keys_yaml(w: Workload) -> str:
    lines = ["keys:"]
    for user in w.users:
        digest = hashlib.sha256(user.key.encode()).hexdigest()
        lines += [
            f'  - sha256: "{digest}"',
            f"    subject: {user.subject}",
            f"    roles: [{user.role}]",
        ]
    return "\n".join(lines) + "\n"


def write_policy_dir(w: Workload, directory: Path, *, limited: bool = False) -> None:
    """The workload as a policy set: one .policy file and the keys file it names;
    `limited`: every route also names a limit that never refuses. A policy too large
    for one file (the loader takes 4 MiB a file; 100,000 routes are 7 MB) is split at
    routes into bench-1.policy, bench-2.policy... of half that at most."""
    parts = split_at_routes(policy_text(w, limited=limited), MAX_POLICY_BYTES // 2)
    if len(parts) == 1:
        (directory / "bench.policy").write_text(parts[0], encoding="utf-8")
    for number, part in enumerate(parts if len(parts) > 1 else (), start=1):
        (directory / f"bench-{number}.policy").write_text(part, encoding="utf-8")
    (directory / "keys.yaml").write_text(keys_yaml(w), encoding="utf-8")


def split_at_routes(text: str, most: int) -> list[str]:
    """`text` in pieces of at most `most` characters (a route is far shorter), each
    starting at a route but the first, which keeps the declarations."""
    first, *routes = text.split("\n\nroute ")
    parts = [first]
    for route in routes:
        block = "\n\nroute " + route
        if len(parts[-1]) + len(block) > most:
            parts.append(block.lstrip("\n"))
        else:
            parts[-1] += block
    return parts
