"""Who may call a route: its rules, span-free, and the grant they make to one principal.

A grant is what the engine's rule step decides for a kind of caller, with the parts no
compile-time analysis can know (a `when` condition, a scope the token may or may not
carry) kept as atoms: allowed when every atom of some allow term holds and every deny
term has an atom that fails. Equal grants compare equal; `narrower` is sound (it never
calls a widening narrow) though not complete.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum

from policyengine.tree import AllowKind


class Access(Enum):
    ALLOW = "allow"
    CONDITIONAL = "conditional"  # a `when` (or the token's scopes) decides
    DENY = "deny"


class AtomKind(Enum):
    WHEN = "when"
    SCOPE = "scope"


@dataclass(frozen=True, slots=True)
class Atom:
    """One requirement beyond who the caller is."""

    kind: AtomKind
    text: str  # the canonical condition (parameters by position), or the scope
    shown: str = field(default="", compare=False)  # as the route names its parameters

    def __str__(self) -> str:
        text = self.shown or self.text
        return f"{self.kind.value} ({text})" if " " in text else f"{self.kind.value} {text}"


Term = frozenset[Atom]  # a conjunction; the empty term always holds


@dataclass(frozen=True, slots=True)
class RuleSummary:
    """An allow or deny rule as the engine applies it; no span, no closure."""

    allow: bool
    kind: AllowKind  # for a deny: ROLE when it names roles, else ANYONE
    roles: frozenset[str] | None  # every role that satisfies it, inheritance folded in
    scopes: frozenset[str]
    when: str | None  # the canonical condition
    site: str  # file:line
    when_shown: str = ""  # the condition with the route's own parameter names


@dataclass(frozen=True, slots=True)
class Principal:
    """A kind of caller: `anyone` (no identity), `authenticated` (an identity with no
    role), a role, or `scope:NAME` (an identity with no role holding that scope)."""

    name: str
    identity: bool
    roles: frozenset[str] = frozenset()
    scopes: frozenset[str] = frozenset()  # held for sure; any other scope is an atom


ANYONE = Principal("anyone", identity=False)
AUTHENTICATED = Principal("authenticated", identity=True)


def role_principal(role: str) -> Principal:
    return Principal(role, identity=True, roles=frozenset((role,)))


def scope_principal(scope: str) -> Principal:
    return Principal(f"scope:{scope}", identity=True, scopes=frozenset((scope,)))


@dataclass(frozen=True, slots=True)
class Grant:
    access: Access
    allow_if: frozenset[Term] = frozenset()  # only when conditional
    deny_if: frozenset[Term] = frozenset()

    def describe(self) -> str:
        if self.access is not Access.CONDITIONAL:
            return str(self.access.value)
        parts = []
        if self.allow_if != {frozenset()}:
            parts.append("allow " + " or ".join(_term_text(t) for t in _sorted(self.allow_if)))
        if self.deny_if:
            parts.append("deny " + " or ".join(_term_text(t) for t in _sorted(self.deny_if)))
        return "conditional: " + "; ".join(parts)


DENIED = Grant(Access.DENY)
ALLOWED = Grant(Access.ALLOW)


def _atom_key(atom: Atom) -> tuple[str, str]:
    return (atom.kind.value, atom.text)


def _sorted(terms: frozenset[Term]) -> list[Term]:
    return sorted(terms, key=lambda term: sorted(map(_atom_key, term)))


def _term_text(term: Term) -> str:
    return " and ".join(str(atom) for atom in sorted(term, key=_atom_key))


def _applies(rule: RuleSummary, who: Principal) -> bool:
    if rule.kind is AllowKind.ANYONE or rule.kind is AllowKind.WHEN:
        return True
    if not who.identity:
        return False
    return rule.roles is None or not rule.roles.isdisjoint(who.roles)


def _term(rule: RuleSummary, who: Principal) -> Term:
    atoms = [Atom(AtomKind.SCOPE, s) for s in rule.scopes - who.scopes]
    if rule.when is not None:
        atoms.append(Atom(AtomKind.WHEN, rule.when, rule.when_shown))
    return frozenset(atoms)


def grant_of(rules: Iterable[RuleSummary], who: Principal) -> Grant:
    """What the rule step decides for `who`: denies first, then any allow."""
    allows: set[Term] = set()
    denies: set[Term] = set()
    for rule in rules:
        if _applies(rule, who):
            (allows if rule.allow else denies).add(_term(rule, who))
    deny_if = _minimal(denies)
    # an allow term that implies a deny term never lets anyone through
    allow_if = _minimal(t for t in allows if not any(d <= t for d in deny_if))
    if not allow_if or frozenset() in deny_if:
        return DENIED
    if frozenset() in allow_if and not deny_if:
        return ALLOWED
    return Grant(Access.CONDITIONAL, allow_if, deny_if)


def _minimal(terms: Iterable[Term]) -> frozenset[Term]:
    """Drop each term another, weaker one absorbs (`a or (a and b)` is `a`)."""
    pool = set(terms)
    return frozenset(t for t in pool if not any(o < t for o in pool))


def narrower(before: Grant, after: Grant) -> bool:
    """Whether every request `after` allows, `before` allowed too (proved, or False)."""
    if after.access is Access.DENY or before.access is Access.ALLOW:
        return True
    if before.access is Access.DENY or after.access is Access.ALLOW:
        return False
    # after's allow terms each at least as strong as one of before's; before's deny terms
    # each at least as strong as one of after's: then after's set is inside before's
    return all(any(b <= a for b in before.allow_if) for a in after.allow_if) and all(
        any(a <= b for a in after.deny_if) for b in before.deny_if
    )
