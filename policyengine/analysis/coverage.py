"""`policyengine test --coverage`: the rules no test case exercised, the routes none reached.

Every decision names its route and the rule that decided it (`Decision.route`,
`Decision.rule`: the allow rule that let it through, or the deny rule that refused it).
An allow or deny rule is exercised when it decided some case. A route's `body`, `query`
and `limit` rules are exercised when a case got past that route's rules (an allow rule
decided it), since only then do they run. A route is reached when a case matched it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from policyengine import ast
from policyengine.analysis.sources import PlaceholderEnviron
from policyengine.compile import compile_with_state
from policyengine.decision import Decision
from policyengine.loader import load_policy_set
from policyengine.source import Span

_CHECKS = (ast.BodyRule, ast.QueryRule, ast.LimitRule)
_DECIDING = (ast.AllowAnyone, ast.AllowAuthenticated, ast.AllowRole, ast.AllowWhen, ast.Deny)


@dataclass(frozen=True, slots=True)
class RuleSite:
    site: str  # file:line, as decisions cite it
    location: str  # file:line:col (two rules may share a line)
    text: str  # the rule's first line, as written
    routes: tuple[str, ...]  # the labels of its route's targets
    allows: frozenset[str]  # for a check rule: the allow rules that lead to it


@dataclass(frozen=True, slots=True)
class RouteSite:
    label: str
    site: str


@dataclass(frozen=True, slots=True)
class SetCoverage:
    directory: str
    rules: tuple[RuleSite, ...]
    routes: tuple[RouteSite, ...]
    missed_rules: tuple[RuleSite, ...]
    missed_routes: tuple[RouteSite, ...]

    def summary_line(self) -> str:
        rules, routes = len(self.rules), len(self.routes)
        hit_rules, hit_routes = rules - len(self.missed_rules), routes - len(self.missed_routes)
        percent = 100.0 * (hit_rules + hit_routes) / max(1, rules + routes)
        return (
            f"coverage {self.directory}: {hit_rules}/{rules} rules, "
            f"{hit_routes}/{routes} routes ({percent:.1f}%)"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "directory": self.directory,
            "rules": len(self.rules),
            "routes": len(self.routes),
            "not_exercised": [
                {"site": r.location, "rule": r.text, "routes": list(r.routes)}
                for r in self.missed_rules
            ],
            "not_reached": [{"route": r.label, "site": r.site} for r in self.missed_routes],
        }


def targets(directory: Path) -> tuple[tuple[RuleSite, ...], tuple[RouteSite, ...]]:
    """Every rule and route of the set below `directory`; raises PolicyError."""
    _, state = compile_with_state(
        load_policy_set(directory), environ=PlaceholderEnviron(), lints=False
    )
    labels: dict[int, list[str]] = {}
    for flat, route in state.compiled_routes:
        labels.setdefault(id(flat.route), []).append(route.label)
    rules: dict[str, RuleSite] = {}
    for flat in state.routes:
        names = tuple(labels.get(id(flat.route), ()))
        allows = frozenset(r.span.short() for r in flat.route.rules if isinstance(r, _DECIDING)
                           and not isinstance(r, ast.Deny))  # fmt: skip
        for rule in flat.route.rules:
            if isinstance(rule, _DECIDING + _CHECKS):
                where = rule.span.location()
                leads = allows if isinstance(rule, _CHECKS) else frozenset()
                rules.setdefault(
                    where, RuleSite(rule.span.short(), where, _first_line(rule.span), names, leads)
                )
    routes = [RouteSite(route.label, route.site) for _, route in state.compiled_routes]
    return tuple(sorted(rules.values(), key=_site_key)), tuple(routes)


def measure(directory: Path, decisions: Iterable[Decision]) -> SetCoverage:
    rules, routes = targets(directory)
    decided: set[str] = set()
    passed: set[tuple[str, str]] = set()  # (route, allow rule) of each case let through
    reached: set[str] = set()
    for decision in decisions:
        if decision.route is not None:
            reached.add(decision.route)
        if decision.rule is not None:
            decided.add(decision.rule)
            if decision.route is not None:
                passed.add((decision.route, decision.rule))
    missed = tuple(
        r
        for r in rules
        if not (
            any((route, allow) in passed for route in r.routes for allow in r.allows)
            if r.allows
            else r.site in decided
        )
    )
    return SetCoverage(
        directory=str(directory),
        rules=rules,
        routes=routes,
        missed_rules=missed,
        missed_routes=tuple(r for r in routes if r.label not in reached),
    )


def render_text(coverage: SetCoverage) -> str:
    lines = [coverage.summary_line()]
    lines.extend(f"  not exercised: {r.location}  {r.text}" for r in coverage.missed_rules)
    lines.extend(f"  not reached:   {r.site}  {r.label}" for r in coverage.missed_routes)
    return "\n".join(lines)


def _first_line(span: Span) -> str:
    text = span.source.text[span.start : span.end].splitlines()[0]
    return re.sub(r"\s+", " ", text).strip()


def _site_key(rule: RuleSite) -> tuple[str, int, int]:
    rest, _, col = rule.location.rpartition(":")
    name, _, line = rest.rpartition(":")
    return (name, int(line or 0), int(col or 0))
