"""A typed per-route summary of a compiled policy: what diff, matrix and coverage read.

Everything here is span-free and canonical, so two policies that differ only in form
(layout, comments, the order of routes or files, the names of equal schemas, the names
of path parameters) summarize to equal routes.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from policyengine import ast
from policyengine.analysis.access import (
    ANYONE,
    AUTHENTICATED,
    Grant,
    Principal,
    RuleSummary,
    grant_of,
    role_principal,
    scope_principal,
)
from policyengine.analysis.exprtext import expr_text
from policyengine.compile import CompiledPolicy
from policyengine.compile.state import CompileState, Declared, FlatRoute
from policyengine.hosts import HostSet
from policyengine.patterns import ParamType, PathPattern, SegmentKind
from policyengine.ratelimit.bans import BanSpec
from policyengine.ratelimit.plan import LimitSpec
from policyengine.schema.query import QueryValidator
from policyengine.tree import AllowKind, CompiledRoute, DecisionTree

RouteKey = tuple[str, tuple[tuple[int, str], ...]]  # method and path shape
_SAMPLE = {ParamType.INT: "1", ParamType.UUID: "00000000-0000-4000-8000-000000000000"}


def keys_text(keys: tuple[tuple[str, str | None], ...]) -> str:
    """`by` keys as the policy writes them: `client_ip, header "X-Device"`."""
    return ", ".join(kind if arg is None else f'{kind} "{arg}"' for kind, arg in keys)


@dataclass(frozen=True, slots=True)
class BanSummary:
    """A route's ban, as `diff` compares it: what it does, whatever it is called."""

    name: str
    count: int
    period: float
    keys: tuple[tuple[str, str | None], ...]
    ban: float
    statuses: tuple[int, ...]

    def at_least_as_strict_as(self, other: BanSummary) -> bool:
        """Bans whoever `other` bans, at least as soon and as long (same keys)."""
        return (
            self.keys == other.keys
            and self.count <= other.count
            and self.period >= other.period
            and self.ban >= other.ban
            and set(self.statuses) >= set(other.statuses)
        )

    def describe(self) -> str:
        by = keys_text(self.keys)
        on = ", ".join(map(str, self.statuses))
        return (
            f"{self.name}: after {self.count} failures per {self.period:g}s by {by} "
            f"for {self.ban:g}s on {on}"
        )


@dataclass(frozen=True, slots=True)
class LimitSummary:
    name: str
    count: int
    period: float
    burst: int | None
    keys: tuple[tuple[str, str | None], ...]

    @property
    def settings(self) -> tuple[int, float, int | None, tuple[tuple[str, str | None], ...]]:
        """What the limit does, whatever it is called."""
        return (self.count, self.period, self.burst, self.keys)

    def describe(self) -> str:
        by = keys_text(self.keys)
        burst = f" burst {self.burst}" if self.burst is not None else ""
        return f"{self.name}: {self.count} per {self.period:g}s by {by}{burst}"

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "count": self.count,
            "period_seconds": self.period,
            "burst": self.burst,
            "by": [kind if arg is None else f"{kind}:{arg}" for kind, arg in self.keys],
        }


@dataclass(frozen=True, slots=True)
class InputSummary:
    """A body or query schema: the compiled JSON Schema, its `$defs` renamed canonically."""

    schema: str  # the name the policy gives it (shown, never compared)
    document: str  # canonical JSON text
    max_bytes: int | None  # bodies only

    def describe(self) -> str:
        size = f" max {self.max_bytes} bytes" if self.max_bytes is not None else ""
        return f"{self.schema}{size}"


@dataclass(frozen=True, slots=True)
class AuthnSummary:
    """An authn block's settings, canonical; a file it reads stands for its content's
    digest and a secret from the environment for the variable's name, never its value."""

    label: str
    kind: str
    settings: tuple[str, ...]

    def describe(self) -> str:
        return f"authn {self.kind} {self.label}: " + "; ".join(self.settings)


@dataclass(frozen=True, slots=True)
class RouteSummary:
    label: str  # "DELETE /api/orders/{id:int}"
    method: str
    shape: tuple[tuple[int, str], ...]
    site: str  # file:line of the route
    sample: tuple[str, ...]  # a path the route matches, as segments
    rules: tuple[RuleSummary, ...]
    limits: tuple[LimitSummary, ...]
    bans: tuple[BanSummary, ...]
    body: InputSummary | None
    query: InputSummary | None
    authn: tuple[AuthnSummary, ...]
    hosts: HostSet | None = None  # the hosts it serves (its own, its group's or the set's)

    @property
    def key(self) -> RouteKey:
        return (self.method, self.shape)

    def grant(self, who: Principal) -> Grant:
        return grant_of(self.rules, who)


@dataclass(frozen=True, slots=True)
class PolicySummary:
    roles: tuple[str, ...]  # in declaration order
    scopes: tuple[str, ...]  # named by `allow scope` rules, sorted
    routes: tuple[RouteSummary, ...]  # sorted by label
    tree: DecisionTree  # to find which route a path reaches
    permits: tuple[str, ...]  # the set's hardening opt-outs (`permit`), sorted

    def principals(self) -> tuple[Principal, ...]:
        """The matrix's columns: each role, anyone, authenticated, each scope."""
        return (
            *(role_principal(r) for r in self.roles),
            ANYONE,
            AUTHENTICATED,
            *(scope_principal(s) for s in self.scopes),
        )

    def by_label(self) -> dict[str, RouteSummary]:
        return {route.label: route for route in self.routes}


def summarize(compiled: CompiledPolicy, state: CompileState) -> PolicySummary:
    authn = {name: _authn(declared) for name, declared in state.authn_blocks.items()}
    routes = [_route(state, flat, route, authn) for flat, route in state.compiled_routes]
    scopes = {
        scope.value
        for flat in state.routes
        for rule in flat.route.rules
        if isinstance(rule, ast.AllowAuthenticated)
        for scope in rule.scopes
    }
    return PolicySummary(
        roles=tuple(state.roles),
        scopes=tuple(sorted(scopes)),
        routes=tuple(sorted(routes, key=lambda r: r.label)),
        tree=compiled.tree,
        permits=tuple(sorted(p.value for p in state.permits)),
    )


def _route(
    state: CompileState,
    flat: FlatRoute,
    route: CompiledRoute,
    authn: dict[str, AuthnSummary],
) -> RouteSummary:
    method, _, _ = route.label.partition(" ")
    pattern = next(
        p
        for t in flat.route.targets
        if (p := state.patterns.get(t)) is not None and f"{t.method.value} {p.text}" == route.label
    )
    limits = tuple(
        _limit(state.compiled_limits[name.value])
        for rule in flat.route.rules
        if isinstance(rule, ast.LimitRule)
        for name in rule.names
        if name.value in state.compiled_limits
    )
    bans = tuple(
        _ban(state.compiled_bans[name.value])
        for rule in flat.route.rules
        if isinstance(rule, ast.BanRule)
        for name in rule.names
        if name.value in state.compiled_bans
    )
    return RouteSummary(
        label=route.label,
        method=method,
        shape=pattern.shape,
        site=route.site,
        sample=_sample(pattern),
        rules=tuple(
            r for rule in flat.route.rules if (r := _rule(state, rule, pattern)) is not None
        ),
        limits=tuple(sorted(set(limits), key=lambda limit: limit.name)),
        bans=tuple(sorted(set(bans), key=lambda ban: ban.name)),
        body=_body(state, flat, route),
        query=_query(route),
        authn=tuple(sorted((authn[a.name] for a in route.authenticators), key=_label)),
        hosts=route.hosts or state.set_hosts,
    )


def _label(summary: AuthnSummary) -> str:
    return summary.label


def _rule(state: CompileState, rule: ast.Rule, pattern: PathPattern) -> RuleSummary | None:
    site = rule.span.short()
    if isinstance(rule, ast.AllowAnyone):
        return RuleSummary(True, AllowKind.ANYONE, None, frozenset(), None, site)
    if not isinstance(rule, ast.AllowWhen | ast.AllowAuthenticated | ast.AllowRole | ast.Deny):
        return None  # body, query, limit and require rules are summarized apart
    when = shown = None
    if rule.when is not None:
        positions = {name: f"#{i + 1}" for i, name in enumerate(pattern.param_names)}
        when, shown = expr_text(rule.when, positions), expr_text(rule.when)
    kind, roles, scopes = AllowKind.ANYONE, None, frozenset[str]()
    if isinstance(rule, ast.AllowWhen):
        kind = AllowKind.WHEN
    elif isinstance(rule, ast.AllowAuthenticated):
        kind, scopes = AllowKind.AUTHENTICATED, frozenset(s.value for s in rule.scopes)
    elif isinstance(rule, ast.AllowRole):
        kind, scopes = AllowKind.ROLE, frozenset(s.value for s in rule.scopes)
        roles = _satisfying(state, rule.roles)
    elif rule.roles:  # a deny naming roles
        kind, roles = AllowKind.ROLE, _satisfying(state, rule.roles)
    allow = not isinstance(rule, ast.Deny)
    return RuleSummary(allow, kind, roles, scopes, when, site, shown or "")


def _satisfying(state: CompileState, roles: tuple[ast.Name, ...]) -> frozenset[str]:
    found: set[str] = set()
    for role in roles:
        found |= state.satisfying_roles.get(role.value, frozenset())
    return frozenset(found)


def _ban(spec: BanSpec) -> BanSummary:
    statuses = tuple(sorted(spec.statuses))
    return BanSummary(spec.name, spec.count, spec.period, spec.keys, spec.ban, statuses)


def _limit(spec: LimitSpec) -> LimitSummary:
    return LimitSummary(spec.name, spec.count, spec.period, spec.burst, spec.keys)


def _body(state: CompileState, flat: FlatRoute, route: CompiledRoute) -> InputSummary | None:
    if route.body is None:
        return None
    rule = next(r for r in flat.route.rules if isinstance(r, ast.BodyRule))
    schema = state.compiled_schemas[rule.schema.value]
    return InputSummary(schema.name, canonical_schema(schema.json_schema), route.body.max_bytes)


def _query(route: CompiledRoute) -> InputSummary | None:
    if route.query is None or not isinstance(route.query.validate, QueryValidator):
        return None
    return InputSummary("query", canonical_schema(route.query.validate.json_schema), None)


def _sample(pattern: PathPattern) -> tuple[str, ...]:
    """A concrete path the pattern matches: to ask another tree where it goes."""
    segments: list[str] = []
    for segment in pattern.segments:
        if segment.kind is SegmentKind.STATIC:
            segments.append(segment.text)
        elif segment.kind is SegmentKind.TYPED and segment.type is not None:
            segments.append(_SAMPLE[segment.type])
        else:
            segments.append("x")
    return tuple(segments)


# --- schemas ------------------------------------------------------------------------------

_DEFS = "#/$defs/"
_EMBEDDED = "urn:policyengine:schema:"


def canonical_schema(document: dict[str, Any]) -> str:
    """The document as sorted JSON with each `$defs` entry renamed by the order a walk
    first reaches it: renaming a referenced schema changes nothing."""
    names: dict[str, str] = {}
    defs = document.get("$defs", {})

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith(_DEFS):
                name = ref[len(_DEFS) :]
                if name not in names:
                    names[name] = f"d{len(names)}"
                    visit(defs.get(name))
            for key in sorted(node):
                if key != "$defs":
                    visit(node[key])
        elif isinstance(node, list):
            for item in node:
                visit(item)

    visit(document)

    def rename(node: Any) -> Any:
        if isinstance(node, dict):
            out: dict[str, Any] = {}
            for key, value in node.items():
                if key == "$defs" and node is document:
                    out[key] = {names.get(k, k): rename(v) for k, v in value.items()}
                elif key == "$ref" and isinstance(value, str) and value.startswith(_DEFS):
                    out[key] = _DEFS + names.get(value[len(_DEFS) :], value[len(_DEFS) :])
                elif key == "$id" and isinstance(value, str) and value.startswith(_EMBEDDED):
                    name = value[len(_EMBEDDED) :]
                    out[key] = _EMBEDDED + names.get(name, name)
                else:
                    out[key] = rename(value)
            return out
        if isinstance(node, list):
            return [rename(item) for item in node]
        return node

    return json.dumps(rename(document), sort_keys=True, separators=(",", ":"))


# --- authn blocks -------------------------------------------------------------------------


def _authn(declared: Declared) -> AuthnSummary:
    block = declared.node
    assert isinstance(block, ast.AuthnBlock)
    directory = Path(declared.file.path).parent
    settings = tuple(sorted(_setting_text(s, directory) for s in block.settings))
    return AuthnSummary(block.label, block.kind.value, settings)


def _setting_text(setting: ast.Setting, directory: Path) -> str:
    groups = [_group_text(group, directory) for group in setting.groups]
    text = " ".join([setting.key.value, ", ".join(groups)]).strip()
    if setting.mapping is not None:
        entries = sorted(f"{json.dumps(e.key)}: {e.value.value}" for e in setting.mapping)
        text += " map {" + ", ".join(entries) + "}"
    return text


def _group_text(group: tuple[ast.Word, ...], directory: Path) -> str:
    if len(group) == 2 and group[0].value == "file" and group[1].kind is ast.WordKind.STRING:
        name = str(group[1].value)
        return f"file {json.dumps(name)} (sha256 {file_digest(directory / name)[:12]})"
    return " ".join(
        json.dumps(w.value) if w.kind is ast.WordKind.STRING else _word(w) for w in group
    )


def _word(word: ast.Word) -> str:
    if word.kind is ast.WordKind.DURATION:
        return f"{float(word.value):g}s"
    if word.kind is ast.WordKind.SIZE:
        return f"{word.value}B"
    return str(word.value)


def file_digest(path: Path) -> str:
    """The sha256 of a file's content: parsed first when it is YAML or JSON, so that
    reformatting a keys file or a JWKS changes nothing."""
    try:
        raw = path.read_bytes()
    except OSError:
        return "unreadable"
    if path.suffix.lower() in (".yaml", ".yml", ".json"):
        try:
            data = yaml.safe_load(raw)
            raw = json.dumps(data, sort_keys=True, default=str).encode()
        except yaml.YAMLError:
            pass
    return hashlib.sha256(raw).hexdigest()
