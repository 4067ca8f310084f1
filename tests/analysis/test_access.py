"""Grants checked against brute force: every truth assignment of their conditions."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from policyengine.analysis.access import (
    ANYONE,
    AUTHENTICATED,
    Access,
    AtomKind,
    Principal,
    RuleSummary,
    grant_of,
    narrower,
    role_principal,
    scope_principal,
)
from policyengine.tree import AllowKind

CONDITIONS = ("c1", "c2", "c3")
SCOPES = ("s1", "s2")
ROLES = ("r1", "r2")
PRINCIPALS = (ANYONE, AUTHENTICATED, *map(role_principal, ROLES), scope_principal("s1"))


@st.composite
def rules(draw: st.DrawFn) -> RuleSummary:
    allow = draw(st.booleans())
    kinds = [AllowKind.ANYONE, AllowKind.ROLE] + (
        [AllowKind.AUTHENTICATED, AllowKind.WHEN] if allow else []
    )
    kind = draw(st.sampled_from(kinds))
    roles = (
        frozenset(draw(st.sets(st.sampled_from(ROLES), min_size=1)))
        if kind is AllowKind.ROLE
        else None
    )
    scopes = frozenset()
    if allow and kind in (AllowKind.ROLE, AllowKind.AUTHENTICATED):
        scopes = frozenset(draw(st.sets(st.sampled_from(SCOPES))))
    when = (
        draw(st.sampled_from(CONDITIONS))
        if kind is AllowKind.WHEN
        else draw(st.none() | st.sampled_from(CONDITIONS))
    )
    return RuleSummary(allow, kind, roles, scopes, when, "t.policy:1")


def allowed(rules_: list[RuleSummary], who: Principal, true: set[str], scopes: set[str]) -> bool:
    """The engine's rule step, for one principal, conditions and token scopes."""

    def holds(rule: RuleSummary) -> bool:
        if rule.kind in (AllowKind.AUTHENTICATED, AllowKind.ROLE) and not who.identity:
            return False
        if rule.roles is not None and (not who.identity or rule.roles.isdisjoint(who.roles)):
            return False
        if not rule.scopes <= (scopes | who.scopes):
            return False
        return rule.when is None or rule.when in true

    if any(holds(r) for r in rules_ if not r.allow):
        return False
    return any(holds(r) for r in rules_ if r.allow)


def worlds(who: Principal) -> list[tuple[set[str], set[str]]]:
    """Every assignment of the conditions, and every scope set the token may carry."""
    out = []
    for values in itertools.product((False, True), repeat=len(CONDITIONS) + len(SCOPES)):
        true = {c for c, v in zip(CONDITIONS, values, strict=False) if v}
        scopes = {s for s, v in zip(SCOPES, values[len(CONDITIONS) :], strict=True) if v}
        out.append((true, scopes if who.identity else set()))
    return out


@settings(max_examples=300, deadline=None)
@given(st.lists(rules(), max_size=5))
def test_grant_matches_brute_force(rule_list: list[RuleSummary]) -> None:
    for who in PRINCIPALS:
        grant = grant_of(rule_list, who)
        results = {allowed(rule_list, who, t, s) for t, s in worlds(who)}
        expected = (
            Access.ALLOW
            if results == {True}
            else Access.DENY
            if results == {False}
            else Access.CONDITIONAL
        )
        assert grant.access is expected, (who, rule_list, grant)


@settings(max_examples=300, deadline=None)
@given(st.lists(rules(), max_size=4), st.lists(rules(), max_size=4))
def test_narrower_is_sound(before: list[RuleSummary], after: list[RuleSummary]) -> None:
    for who in PRINCIPALS:
        if narrower(grant_of(before, who), grant_of(after, who)):
            for true, scopes in worlds(who):
                if allowed(after, who, true, scopes):
                    assert allowed(before, who, true, scopes), (who, before, after)


def test_equal_rules_in_another_order_make_equal_grants() -> None:
    a = RuleSummary(True, AllowKind.ROLE, frozenset({"r1"}), frozenset(), "c1", "x:1")
    b = RuleSummary(True, AllowKind.AUTHENTICATED, None, frozenset({"s1"}), None, "x:2")
    d = RuleSummary(False, AllowKind.ANYONE, None, frozenset(), "c2", "x:3")
    who = role_principal("r1")
    assert grant_of([a, b, d], who) == grant_of([d, b, a], who)
    grant = grant_of([a, b, d], who)
    assert grant.access is Access.CONDITIONAL
    assert grant.describe() == "conditional: allow scope s1 or when c1; deny when c2"
    assert {atom.kind for term in grant.allow_if for atom in term} == {
        AtomKind.SCOPE, AtomKind.WHEN,
    }  # fmt: skip
