"""The workload in each peer's own idiom, plus a bare segment trie as the floor.

Each builder returns a Contender: the compiled peer, one native input per call
(built untimed, like policyengine's Request objects) and the one call that is
timed. Peers get the call's subject directly: the key lookup policyengine does
per request is not theirs to do, which is generous to them. The bare trie comes
twice: given the subject like the peers, and given policyengine's own Request. Their user -> role
assignments live in their own policy data, as each peer's docs show.
"""

from __future__ import annotations

import gc
import hashlib
import importlib
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workload import ANONYMOUS, Call, Workload, param_type


@dataclass(frozen=True, slots=True)
class Contender:
    name: str
    build_step: str  # what building it does, for the compile-time table
    build_seconds: float
    call: Callable[[Any], Any]  # the timed call: one decision
    allowed: Callable[[Any], bool]  # reads the verdict from what `call` returned
    prepare: Callable[[Call], Any]  # a workload call as this contender's native input


BUILD_REPS = 3


def _timed(build: Callable[[], Any]) -> tuple[Any, float]:
    """The built thing and the median time of BUILD_REPS builds, each from a collected heap."""
    times = []
    for _ in range(BUILD_REPS):
        gc.collect()
        started = time.perf_counter()
        built = build()
        times.append(time.perf_counter() - started)
    return built, statistics.median(times)


# -- pycasbin: the RBAC model with keyMatch2, as in casbin's docs --------------------------
# The matcher's terms are in the cheapest-first order: 25% faster than the docs' order.

CASBIN_MODEL = """\
[request_definition]
r = sub, obj, act

[policy_definition]
p = sub, obj, act

[role_definition]
g = _, _

[policy_effect]
e = some(where (p.eft == allow))

[matchers]
m = r.act == p.act && keyMatch2(r.obj, p.obj) && g(r.sub, p.sub)
"""


def casbin_policy_lines(w: Workload) -> list[str]:
    lines = []
    for route in w.routes:
        path = "/" + "/".join(_casbin_segment(s) for s in route.segments)
        lines.append(f"p, {route.role}, {path}, {route.method}")
    lines += [f"g, {role}, {parent}" for role, parent in w.roles if parent]
    lines += [f"g, {user.subject}, {user.role}" for user in w.users]
    return lines


def _casbin_segment(segment: str) -> str:
    return segment if param_type(segment) is None else ":" + segment[1:-1].partition(":")[0]


def build_casbin(w: Workload) -> Contender:
    import casbin  # type: ignore[import-untyped]

    with tempfile.TemporaryDirectory(prefix="bench-casbin-") as tmp:
        model, policy = Path(tmp, "model.conf"), Path(tmp, "policy.csv")
        model.write_text(CASBIN_MODEL, encoding="utf-8")
        policy.write_text("\n".join(casbin_policy_lines(w)) + "\n", encoding="utf-8")
        enforcer, seconds = _timed(lambda: casbin.Enforcer(str(model), str(policy)))
    enforce = enforcer.enforce
    return Contender(
        "pycasbin",
        "Enforcer(model, policy)",
        seconds,
        lambda args: enforce(*args),
        bool,
        lambda c: (c.subject, c.path, c.method),
    )


# -- cedarpy: one permit per route; roles are entities, inheritance is their parents -------
# Cedar has no path patterns: `like` matches the path with `*` for a parameter, and the
# caller passes the segment count so that a `*` cannot span segments. Cedar cannot say
# `int`; the workload's parameters are all integers, so the answers still agree.


def cedar_policies(w: Workload) -> str:
    policies = []
    for route in w.routes:
        pattern = "/" + "/".join("*" if param_type(s) is not None else s for s in route.segments)
        test = "like" if "*" in pattern else "=="
        policies.append(
            f'permit (principal in Role::"{route.role}", action == Action::"{route.method}", '
            f"resource)\n"
            f'when {{ context.depth == {len(route.segments)} && context.path {test} "{pattern}" }};'
        )
    return "\n".join(policies)


def cedar_entities(w: Workload) -> list[dict[str, Any]]:
    def entity(kind: str, name: str, parent: str | None) -> dict[str, Any]:
        parents = [{"type": "Role", "id": parent}] if parent else []
        return {"uid": {"type": kind, "id": name}, "attrs": {}, "parents": parents}

    roles = [entity("Role", role, parent) for role, parent in w.roles]
    return roles + [entity("User", user.subject, user.role) for user in w.users]


def build_cedar(w: Workload) -> Contender:
    import cedarpy

    text, entities_json = cedar_policies(w), json.dumps(cedar_entities(w))
    (policies, entities), seconds = _timed(
        lambda: (cedarpy.PolicySet.from_str(text), cedarpy.Entities.from_json_str(entities_json))
    )

    def decide(request: dict[str, Any]) -> Any:
        return cedarpy.is_authorized(request, policies, entities)

    def prepare(c: Call) -> dict[str, Any]:
        return {
            "principal": {"type": "User", "id": c.subject},
            "action": {"type": "Action", "id": c.method},
            "resource": {"type": "Api", "id": "gateway"},
            "context": {"path": c.path, "depth": c.path.count("/")},
        }

    return Contender(
        "cedarpy", "PolicySet + Entities", seconds, decide, lambda r: bool(r.allowed), prepare
    )


# -- regorus: OPA's RBAC example: user -> roles, role -> grants, roles inherit as a graph --
# A decision walks the caller's grants only, never every route.

REGO_POLICY = r"""package authz

import rego.v1

default allow := false

parts := split(trim_prefix(input.path, "/"), "/")

allow if {
	some role in graph.reachable(data.role_graph, data.user_roles[input.subject])
	some grant in data.role_grants[role]
	grant.method == input.method
	count(grant.segments) == count(parts)
	every i, pattern in grant.segments {
		segment_matches(pattern, parts[i])
	}
}

segment_matches(pattern, segment) if pattern == segment

segment_matches(":", segment) if segment != ""

segment_matches(":int", segment) if regex.match(`^-?[0-9]{1,18}$`, segment)
"""


def rego_data(w: Workload) -> dict[str, Any]:
    grants: dict[str, list[dict[str, Any]]] = {}
    for route in w.routes:
        segments = [_rego_segment(s) for s in route.segments]
        grants.setdefault(route.role, []).append({"method": route.method, "segments": segments})
    return {
        "role_grants": grants,
        "user_roles": {user.subject: [user.role] for user in w.users},
        "role_graph": {role: [parent] if parent else [] for role, parent in w.roles},
    }


def _rego_segment(segment: str) -> str:
    kind = param_type(segment)
    return segment if kind is None else ":" + kind


def build_rego(w: Workload) -> Contender:
    import regorus  # type: ignore[import-untyped]

    data_json = json.dumps(rego_data(w))

    def compile_rego() -> Any:
        engine = regorus.Engine()
        engine.add_policy("authz.rego", REGO_POLICY)
        engine.add_data_json(data_json)
        return engine

    engine, seconds = _timed(compile_rego)
    set_input, eval_rule = engine.set_input_json, engine.eval_rule

    def decide(input_json: str) -> Any:
        set_input(input_json)
        return eval_rule("data.authz.allow")

    def prepare(c: Call) -> str:
        return json.dumps({"method": c.method, "path": c.path, "subject": c.subject})

    return Contender("regorus", "add_policy + add_data", seconds, decide, bool, prepare)


# -- the floor: a bare segment trie, no normalization, no authn, no typed segments --------


class _TrieNode:
    __slots__ = ("children", "methods")

    def __init__(self) -> None:
        self.children: dict[str, _TrieNode] = {}  # "*" is any one segment
        self.methods: dict[str, str] = {}  # method -> the role it needs


def _trie_of(w: Workload) -> _TrieNode:
    root = _TrieNode()
    for route in w.routes:
        node = root
        for segment in route.segments:
            key = "*" if param_type(segment) is not None else segment
            node = node.children.setdefault(key, _TrieNode())
        node.methods[route.method] = route.role
    return root


def _walk(root: _TrieNode, method: str, path: str, roles: frozenset[str]) -> bool:
    node = root
    for segment in path[1:].split("/"):
        child = node.children.get(segment) or node.children.get("*")
        if child is None:
            return False
        node = child
    role = node.methods.get(method)
    return role is not None and role in roles


def build_trie(w: Workload) -> Contender:
    root, seconds = _timed(lambda: _trie_of(w))
    roles = {user.subject: w.inherited[user.role] for user in w.users}
    roles[ANONYMOUS] = frozenset()
    return Contender(
        "bare segment trie",
        "build",
        seconds,
        lambda call: _walk(root, *call),
        bool,
        lambda c: (c.method, c.path, roles[c.subject]),
    )


# What a bare implementation would bind for the same job: CPython's own sha256 where it
# is there (the engine's choice too, authn/api_key.py), else hashlib's.
_sha256: Callable[[bytes], Any] = getattr(
    importlib.import_module("_sha256" if sys.version_info < (3, 12) else "_sha2"),
    "sha256",
    hashlib.sha256,
)


def build_trie_same_request(w: Workload, prepare: Callable[[Call], Any]) -> Contender:
    """The bare trie given what policyengine is given, a Request per call: it reads the
    `X-API-Key` header (as spelled; no case folding), looks the key's sha256 up in a dict
    of roles, drops the query and walks the trie. No normalization, no hardening, no
    Decision: still the floor, but for the same job."""
    root, seconds = _timed(lambda: _trie_of(w))
    by_digest = {_sha256(u.key.encode()).digest(): w.inherited[u.role] for u in w.users}
    nobody: frozenset[str] = frozenset()

    def decide(request: Any) -> bool:
        key = request.headers.get("X-API-Key")
        roles = by_digest.get(_sha256(key.encode()).digest(), nobody) if key else nobody
        return _walk(root, request.method, request.path.partition("?")[0], roles)

    return Contender("bare trie, same request", "build", seconds, decide, bool, prepare)


PEER_BUILDERS: dict[str, Callable[[Workload], Contender]] = {
    "pycasbin": build_casbin,
    "cedarpy": build_cedar,
    "regorus": build_rego,
}
