"""Conditions that can never be true, found from their AST before any request.

The analysis is sound, not complete: it only says "never" when the conjunction of
comparisons between one reference and literals has no solution (`a == 1 and a == 2`,
`n < 1 and n > 5`, `x in ["a"] and x == "b"`), when a conjunct is the literal `false`,
when a rule admitting role R demands `"R" not in roles`, or when a reference can only
be null (a claim no API key of an API-key-only route carries). Anything it does not
understand counts as satisfiable, so a warning is never a false alarm.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from policyengine import ast
from policyengine.expr import values_equal
from policyengine.numbers import is_number

_ORDERED = {
    ast.CompareOp.LT: ast.CompareOp.GT,
    ast.CompareOp.LE: ast.CompareOp.GE,
    ast.CompareOp.GT: ast.CompareOp.LT,
    ast.CompareOp.GE: ast.CompareOp.LE,
}
_NEGATED = {
    ast.CompareOp.EQ: ast.CompareOp.NE,
    ast.CompareOp.NE: ast.CompareOp.EQ,
    ast.CompareOp.IN: ast.CompareOp.NOT_IN,
    ast.CompareOp.NOT_IN: ast.CompareOp.IN,
}
_SCALAR_KINDS = frozenset(
    {ast.LiteralKind.STRING, ast.LiteralKind.INT, ast.LiteralKind.NUMBER, ast.LiteralKind.BOOL}
)


@dataclass(frozen=True, slots=True)
class Facts:
    """What the rule itself guarantees about a request its condition is asked about."""

    guaranteed_roles: frozenset[str] = frozenset()  # in `roles` whenever the rule applies
    always_null: frozenset[str] = frozenset()  # references that can only be null here
    null_why: str = ""  # why they are, for the message


@dataclass(frozen=True, slots=True)
class _Atom:
    """`ref OP value`, with the reference on the left."""

    ref: str
    op: ast.CompareOp
    value: Any  # a scalar, None, or a tuple of scalars for `in`


@dataclass(slots=True)
class _Domain:
    """The values one reference may still take, as the conjuncts narrow it."""

    equal: list[Any] = field(default_factory=list)
    unequal: list[Any] = field(default_factory=list)
    among: tuple[Any, ...] | None = None
    low: tuple[float, bool] | None = None  # bound, inclusive
    high: tuple[float, bool] | None = None


def never_true(expr: ast.Expr, facts: Facts) -> str | None:
    """Why `expr` is false for every request, or None when it may be true."""
    if isinstance(expr, ast.Literal):
        return "the condition is `false`" if expr.value is False else None
    if isinstance(expr, ast.BoolOp) and expr.op is ast.BoolOpKind.OR:
        reasons = [never_true(operand, facts) for operand in expr.operands]
        return "; ".join(r for r in reasons if r) if all(reasons) else None
    conjuncts = list(_conjuncts(expr))
    for conjunct in conjuncts:
        if isinstance(conjunct, ast.BoolOp | ast.Literal):
            reason = never_true(conjunct, facts)
            if reason is not None:
                return reason
    atoms = [atom for c in conjuncts if (atom := _atom(c)) is not None]
    return _role_contradiction(atoms, facts) or _domain_contradiction(atoms, facts)


def _conjuncts(expr: ast.Expr) -> Iterator[ast.Expr]:
    if isinstance(expr, ast.BoolOp) and expr.op is ast.BoolOpKind.AND:
        for operand in expr.operands:
            yield from _conjuncts(operand)
    else:
        yield expr


def _atom(expr: ast.Expr) -> _Atom | None:
    negate = False
    while isinstance(expr, ast.Not):
        negate, expr = not negate, expr.operand
    if not isinstance(expr, ast.Compare):
        return None
    op, left, right = expr.op, expr.left, expr.right
    if isinstance(left, ast.Literal | ast.ListExpr) and isinstance(right, ast.Ref):
        if op in _ORDERED:
            op, left, right = _ORDERED[op], right, left
        elif op in (ast.CompareOp.EQ, ast.CompareOp.NE):
            left, right = right, left
    if negate:
        if op not in _NEGATED:
            return None
        op = _NEGATED[op]
    if isinstance(left, ast.Ref) and isinstance(right, ast.Ref):
        return _ref_pair(op, left, right)
    if not isinstance(left, ast.Ref):
        return _role_atom(op, left, right)
    value = _constant(right)
    if value is _UNKNOWN:
        return None
    return _Atom(ref_key(left), op, value)


_UNKNOWN: Any = object()


def _constant(expr: ast.Expr) -> Any:
    if isinstance(expr, ast.Literal):
        if expr.kind in _SCALAR_KINDS or expr.kind is ast.LiteralKind.NULL:
            return expr.value
        return _UNKNOWN
    if isinstance(expr, ast.ListExpr):
        items = [_constant(item) for item in expr.items]
        if any(item is _UNKNOWN or item is None for item in items):
            return _UNKNOWN
        return tuple(items)
    return _UNKNOWN


def _ref_pair(op: ast.CompareOp, left: ast.Ref, right: ast.Ref) -> _Atom | None:
    """`claims.tenant == path.tenant`: kept only to see a null side (a path is never null)."""
    if op is not ast.CompareOp.EQ:
        return None
    if right.root.value == "path":
        return _Atom(ref_key(left), ast.CompareOp.NE, None)
    if left.root.value == "path":
        return _Atom(ref_key(right), ast.CompareOp.NE, None)
    return None


def _role_atom(op: ast.CompareOp, left: ast.Expr, right: ast.Expr) -> _Atom | None:
    """`"admin" in roles` / `"admin" not in roles`, as an atom on the pseudo-reference."""
    if not (isinstance(right, ast.Ref) and right.root.value == "roles" and not right.parts):
        return None
    if not (isinstance(left, ast.Literal) and left.kind is ast.LiteralKind.STRING):
        return None
    if op not in (ast.CompareOp.IN, ast.CompareOp.NOT_IN):
        return None
    return _Atom("roles", op, left.value)


def ref_key(ref: ast.Ref) -> str:
    """One spelling per reference: header names are case-insensitive."""
    if ref.root.value == "header":
        return "header." + ".".join(p.key.lower() for p in ref.parts)
    return ref.dotted


def _role_contradiction(atoms: list[_Atom], facts: Facts) -> str | None:
    for atom in atoms:
        guaranteed = atom.value in facts.guaranteed_roles
        if atom.ref == "roles" and atom.op is ast.CompareOp.NOT_IN and guaranteed:
            return (
                f"every role this rule admits includes `{atom.value}`, "
                f'so `"{atom.value}" not in roles` is false'
            )
    return None


def _domain_contradiction(atoms: list[_Atom], facts: Facts) -> str | None:
    domains: dict[str, _Domain] = {}
    for atom in atoms:
        if atom.ref == "roles":
            continue
        if atom.ref in facts.always_null and not _holds_for_null(atom):
            return f"`{atom.ref}` is always null here: {facts.null_why}"
        domain = domains.setdefault(atom.ref, _Domain())
        reason = _narrow(domain, atom)
        if reason is not None:
            return f"`{atom.ref}` {reason}"
    return None


def _holds_for_null(atom: _Atom) -> bool:
    if atom.op is ast.CompareOp.EQ:
        return atom.value is None
    if atom.op is ast.CompareOp.NE:
        return atom.value is not None
    return atom.op is ast.CompareOp.NOT_IN


def _narrow(domain: _Domain, atom: _Atom) -> str | None:
    op, value = atom.op, atom.value
    if op is ast.CompareOp.EQ:
        domain.equal.append(value)
    elif op is ast.CompareOp.NE:
        domain.unequal.append(value)
    elif op is ast.CompareOp.IN and isinstance(value, tuple):
        if domain.among is not None:
            value = tuple(v for v in value if any(values_equal(v, w) for w in domain.among))
        domain.among = value
    elif op is ast.CompareOp.NOT_IN and isinstance(value, tuple):
        domain.unequal.extend(value)
    elif op in _ORDERED and is_number(value):
        _bound(domain, op, float(value))
    else:
        return None
    return _empty(domain)


def _bound(domain: _Domain, op: ast.CompareOp, value: float) -> None:
    inclusive = op in (ast.CompareOp.LE, ast.CompareOp.GE)
    if op in (ast.CompareOp.GT, ast.CompareOp.GE):
        if domain.low is None or (value, not inclusive) > (domain.low[0], not domain.low[1]):
            domain.low = (value, inclusive)
    elif domain.high is None or (value, inclusive) < (domain.high[0], domain.high[1]):
        domain.high = (value, inclusive)


def _empty(domain: _Domain) -> str | None:
    """Why no value is left, or None."""
    equal = domain.equal
    for other in equal[1:]:
        if not values_equal(equal[0], other):
            return f"cannot be both {_show(equal[0])} and {_show(other)}"
    if equal and any(values_equal(equal[0], v) for v in domain.unequal):
        return f"cannot both be and not be {_show(equal[0])}"
    if domain.among is not None:
        allowed = [v for v in domain.among if not any(values_equal(v, u) for u in domain.unequal)]
        if not allowed:
            return "is in no list value that the condition leaves open"
        if equal and not any(values_equal(equal[0], v) for v in allowed):
            return f"cannot be {_show(equal[0])} and in the list at once"
    return _range_empty(domain)


def _range_empty(domain: _Domain) -> str | None:
    if (domain.low is not None or domain.high is not None) and domain.equal:
        value = domain.equal[0]
        if not is_number(value):
            return f"cannot be {_show(value)} and compared as a number at once"
        if not _within(float(value), domain):
            return f"cannot be {_show(value)} and within the bounds at once"
    if domain.low is not None and domain.high is not None:
        (low, low_in), (high, high_in) = domain.low, domain.high
        if low > high or (low == high and not (low_in and high_in)):
            return "has no value within the bounds the condition sets"
    return None


def _within(value: float, domain: _Domain) -> bool:
    if domain.low is not None:
        low, inclusive = domain.low
        if value < low or (value == low and not inclusive):
            return False
    if domain.high is not None:
        high, inclusive = domain.high
        if value > high or (value == high and not inclusive):
            return False
    return True


def _show(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'`"{value}"`'
    return f"`{value}`"


def condition_of(rule: ast.Rule) -> ast.Expr | None:
    """The `when` condition of a rule that has one."""
    if isinstance(rule, ast.AllowAuthenticated | ast.AllowRole | ast.Deny | ast.AllowWhen):
        return rule.when
    return None


def walk(expr: ast.Expr) -> Iterator[ast.Expr]:
    """Every sub-expression, the expression itself first."""
    yield expr
    if isinstance(expr, ast.Compare):
        yield from walk(expr.left)
        yield from walk(expr.right)
    elif isinstance(expr, ast.Not):
        yield from walk(expr.operand)
    elif isinstance(expr, ast.BoolOp):
        for operand in expr.operands:
            yield from walk(operand)
    elif isinstance(expr, ast.ListExpr):
        for item in expr.items:
            yield from walk(item)
