"""Expressions to closures over the request context. Never eval: each node becomes a function.

Semantics (LANGUAGE.md, "Expressions"): a reference to something absent is null; any
comparison with null is false except `==`, and `!=` / `not in` are the exact negations
of `==` / `in` (so `deny when claims.tenant != path.tenant` denies a missing claim).
Equality is type-strict: `true` never equals `1`, `"1"` never equals `1`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from policyengine import ast
from policyengine.context import RequestContext
from policyengine.errors import Diagnostics, one_of
from policyengine.jsonbody import value_at
from policyengine.numbers import is_number
from policyengine.patterns import ParamType
from policyengine.regex import RegexError, compile_regex

Fn = Callable[[RequestContext], Any]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class Type(Enum):
    """What the compiler knows of a value, for the checks it can make before any request."""

    STRING = "string"
    NUMBER = "number"
    BOOL = "bool"
    NULL = "null"
    LIST = "list"
    CIDR = "network"
    IP = "IP address"
    ANY = "any"


_LITERAL_TYPES = {
    ast.LiteralKind.STRING: Type.STRING,
    ast.LiteralKind.INT: Type.NUMBER,
    ast.LiteralKind.NUMBER: Type.NUMBER,
    ast.LiteralKind.DURATION: Type.NUMBER,
    ast.LiteralKind.SIZE: Type.NUMBER,
    ast.LiteralKind.BOOL: Type.BOOL,
    ast.LiteralKind.NULL: Type.NULL,
    ast.LiteralKind.CIDR: Type.CIDR,
}

REFERENCE_ROOTS = (
    "subject", "roles", "claims", "path", "query", "header", "body", "client_ip", "method",
    "authn",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class ExprEnv:
    """What an expression may refer to, for one route."""

    params: dict[str, tuple[int, ParamType | None]]  # name -> capture index, type
    roles: frozenset[str]
    inherited_roles: dict[str, frozenset[str]]  # role -> itself and every role it inherits
    query_fields: frozenset[str] | None = None  # None: no query schema, anything goes
    route_label: str = ""
    missing_params: dict[str, str] = field(default_factory=dict)  # name -> target lacking it


@dataclass(frozen=True, slots=True)
class Compiled:
    fn: Fn
    type: Type


# --- runtime helpers ------------------------------------------------------------------------


def values_equal(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if is_number(a) and is_number(b):
        return bool(a == b)
    if isinstance(b, Network):
        a, b = b, a
    if isinstance(a, Network):
        return isinstance(b, IPAddress) and a.num_addresses == 1 and a.network_address == b
    return type(a) is type(b) and bool(a == b)


def _in(value: Any, container: Any) -> bool:
    if value is None or container is None:
        return False
    if isinstance(container, Network):
        ip = _as_ip(value)
        return ip is not None and ip.version == container.version and ip in container
    if isinstance(container, list | tuple | frozenset | set):
        return any(
            _in(value, item) if _is_network(item) else values_equal(value, item)
            for item in container
        )
    return False


def _is_network(v: Any) -> bool:
    return isinstance(v, Network)


def _as_ip(value: Any) -> IPAddress | None:
    if isinstance(value, IPAddress):
        return value
    if isinstance(value, str):
        try:
            return ipaddress.ip_address(value)
        except ValueError:
            return None
    return None


def _ordered(op: ast.CompareOp) -> Callable[[Any, Any], bool]:
    import operator

    compare = {
        ast.CompareOp.LT: operator.lt,
        ast.CompareOp.LE: operator.le,
        ast.CompareOp.GT: operator.gt,
        ast.CompareOp.GE: operator.ge,
    }[op]

    def check(a: Any, b: Any) -> bool:
        if is_number(a) and is_number(b):
            return bool(compare(a, b))
        if isinstance(a, str) and isinstance(b, str):
            return bool(compare(a, b))
        return False

    return check


# --- the compiler -------------------------------------------------------------------------


class ExprCompiler:
    """Type-checks an expression against a route's environment and builds its closure."""

    def __init__(self, env: ExprEnv, diags: Diagnostics) -> None:
        self.env = env
        self.diags = diags

    def condition(self, expr: ast.Expr) -> Fn:
        """A closure returning exactly True or False."""
        compiled = self.compile(expr)
        fn = compiled.fn
        if compiled.type is Type.BOOL and not isinstance(expr, ast.Ref):
            return fn
        return lambda ctx: fn(ctx) is True

    def compile(self, expr: ast.Expr) -> Compiled:
        if isinstance(expr, ast.Literal):
            value = expr.value
            return Compiled(lambda ctx: value, _LITERAL_TYPES[expr.kind])
        if isinstance(expr, ast.ListExpr):
            return self._list(expr)
        if isinstance(expr, ast.Ref):
            return self._ref(expr)
        if isinstance(expr, ast.Not):
            inner = self.condition(expr.operand)
            return Compiled(lambda ctx: not inner(ctx), Type.BOOL)
        if isinstance(expr, ast.BoolOp):
            return self._bool_op(expr)
        return self._compare(expr)

    def _list(self, expr: ast.ListExpr) -> Compiled:
        items = [self.compile(i) for i in expr.items]
        if all(isinstance(i, ast.Literal) for i in expr.items):
            constant = tuple(i.value for i in expr.items if isinstance(i, ast.Literal))
            return Compiled(lambda ctx: constant, Type.LIST)
        fns = [i.fn for i in items]
        return Compiled(lambda ctx: [f(ctx) for f in fns], Type.LIST)

    def _bool_op(self, expr: ast.BoolOp) -> Compiled:
        parts = tuple(self.condition(o) for o in expr.operands)
        if expr.op is ast.BoolOpKind.AND:
            return Compiled(lambda ctx: all(p(ctx) for p in parts), Type.BOOL)
        return Compiled(lambda ctx: any(p(ctx) for p in parts), Type.BOOL)

    # -- references --------------------------------------------------------------------
    def _ref(self, ref: ast.Ref) -> Compiled:
        root = ref.root.value
        keys = tuple(p.key for p in ref.parts)
        builder = getattr(self, f"_ref_{root}", None)
        if builder is None:
            self.diags.error(
                "compile/unknown-reference",
                f"unknown reference `{root}`",
                ref.root.span,
                f"references are {one_of(REFERENCE_ROOTS)}",
            )
            return Compiled(lambda ctx: None, Type.ANY)
        result: Compiled = builder(ref, keys)
        return result

    def _no_parts(self, ref: ast.Ref, keys: tuple[str, ...]) -> None:
        if keys:
            self.diags.error(
                "compile/bad-reference", f"`{ref.root.value}` has no fields", ref.parts[0].span
            )

    def _one_part(self, ref: ast.Ref, keys: tuple[str, ...], what: str) -> str | None:
        if len(keys) != 1:
            self.diags.error(
                "compile/bad-reference",
                f"`{ref.root.value}` needs exactly one {what}: "
                f'`{ref.root.value}.NAME` or `{ref.root.value}["NAME"]`',
                ref.span,
            )
            return None
        return keys[0]

    def _ref_subject(self, ref: ast.Ref, keys: tuple[str, ...]) -> Compiled:
        self._no_parts(ref, keys)
        return Compiled(lambda c: c.identity.subject if c.identity else None, Type.STRING)

    def _ref_authn(self, ref: ast.Ref, keys: tuple[str, ...]) -> Compiled:
        self._no_parts(ref, keys)
        return Compiled(lambda c: c.identity.authn if c.identity else None, Type.STRING)

    def _ref_method(self, ref: ast.Ref, keys: tuple[str, ...]) -> Compiled:
        self._no_parts(ref, keys)
        return Compiled(lambda c: c.method, Type.STRING)

    def _ref_client_ip(self, ref: ast.Ref, keys: tuple[str, ...]) -> Compiled:
        self._no_parts(ref, keys)
        return Compiled(lambda c: c.client_ip, Type.IP)

    def _ref_roles(self, ref: ast.Ref, keys: tuple[str, ...]) -> Compiled:
        """The caller's roles with everything they inherit."""
        self._no_parts(ref, keys)
        inherited = self.env.inherited_roles

        def roles(c: RequestContext) -> tuple[str, ...]:
            if c.identity is None:
                return ()
            found: set[str] = set()
            for role in c.identity.roles:
                found |= inherited.get(role, frozenset((role,)))
            return tuple(sorted(found))

        return Compiled(roles, Type.LIST)

    def _ref_claims(self, ref: ast.Ref, keys: tuple[str, ...]) -> Compiled:
        def claims(c: RequestContext) -> Any:
            return value_at(c.identity.claims, keys) if c.identity else None

        return Compiled(claims, Type.ANY)

    def _ref_body(self, ref: ast.Ref, keys: tuple[str, ...]) -> Compiled:
        return Compiled(lambda c: value_at(c.json_body(), keys), Type.ANY)

    def _ref_header(self, ref: ast.Ref, keys: tuple[str, ...]) -> Compiled:
        name = self._one_part(ref, keys, "header name")
        lower = (name or "").lower()
        return Compiled(lambda c: c.header(lower), Type.STRING)

    def _ref_query(self, ref: ast.Ref, keys: tuple[str, ...]) -> Compiled:
        name = self._one_part(ref, keys, "parameter name") or ""
        fields = self.env.query_fields
        if name and fields is not None and name not in fields:
            self.diags.error(
                "compile/unknown-query-param",
                f"unknown query parameter `{name}`",
                ref.parts[0].span,
                f"this route's query schema declares {one_of(fields)}",
            )
        return Compiled(lambda c: c.query_value(name), Type.STRING)

    def _ref_path(self, ref: ast.Ref, keys: tuple[str, ...]) -> Compiled:
        name = self._one_part(ref, keys, "parameter name")
        if name is None:
            return Compiled(lambda c: None, Type.ANY)
        if name in self.env.missing_params or name not in self.env.params:
            where = self.env.missing_params.get(name, self.env.route_label)
            self.diags.error(
                "compile/unknown-path-param",
                f"unknown path parameter `{name}` in `{where}`",
                ref.parts[0].span,
                f"parameters of this route are {one_of(self.env.params)}",
            )
            return Compiled(lambda c: None, Type.ANY)
        index, param_type = self.env.params[name]
        kind = Type.NUMBER if param_type is ParamType.INT else Type.STRING
        return Compiled(lambda c: c.captures[index], kind)

    # -- comparisons -------------------------------------------------------------------
    def _compare(self, expr: ast.Compare) -> Compiled:
        left = self.compile(expr.left)
        right = self._right_operand(expr)
        self._check_types(expr, left.type, right.type)
        lf, rf = left.fn, right.fn
        op = expr.op
        if op in (ast.CompareOp.EQ, ast.CompareOp.NE):
            eq = self._equality(expr, lf, rf)
            if op is ast.CompareOp.EQ:
                return Compiled(eq, Type.BOOL)
            return Compiled(lambda c: not eq(c), Type.BOOL)
        if op in (ast.CompareOp.IN, ast.CompareOp.NOT_IN):
            contained = self._membership(expr, lf, rf)
            if op is ast.CompareOp.IN:
                return Compiled(contained, Type.BOOL)
            return Compiled(lambda c: not contained(c), Type.BOOL)
        if op in (ast.CompareOp.MATCHES, ast.CompareOp.STARTSWITH, ast.CompareOp.ENDSWITH):
            return Compiled(self._string_test(expr, lf), Type.BOOL)
        ordered = _ordered(op)
        return Compiled(lambda c: ordered(lf(c), rf(c)), Type.BOOL)

    def _right_operand(self, expr: ast.Compare) -> Compiled:
        if expr.op in (ast.CompareOp.MATCHES, ast.CompareOp.STARTSWITH, ast.CompareOp.ENDSWITH):
            return Compiled(lambda c: None, Type.STRING)
        return self.compile(expr.right)

    def _equality(self, expr: ast.Compare, lf: Fn, rf: Fn) -> Fn:
        if isinstance(expr.right, ast.Literal) and expr.right.kind is ast.LiteralKind.STRING:
            text = expr.right.value
            return lambda c: lf(c) == text  # str equality is already type-strict
        return lambda c: values_equal(lf(c), rf(c))

    def _membership(self, expr: ast.Compare, lf: Fn, rf: Fn) -> Fn:
        right = expr.right
        self._check_role_literals(expr)
        if isinstance(right, ast.ListExpr) and all(
            isinstance(i, ast.Literal) and i.kind is ast.LiteralKind.STRING for i in right.items
        ):
            members = frozenset(i.value for i in right.items if isinstance(i, ast.Literal))
            return lambda c: isinstance(v := lf(c), str) and v in members
        return lambda c: _in(lf(c), rf(c))

    def _check_role_literals(self, expr: ast.Compare) -> None:
        """`"editor" in roles`: the role must exist, as in `allow role`."""
        if not (isinstance(expr.right, ast.Ref) and expr.right.root.value == "roles"):
            return
        if isinstance(expr.left, ast.Literal) and expr.left.kind is ast.LiteralKind.STRING:
            role = str(expr.left.value)
            if role not in self.env.roles:
                self.diags.error(
                    "compile/unknown-role",
                    f"unknown role `{role}`",
                    expr.left.span,
                    f"roles are {one_of(self.env.roles)}",
                )

    def _string_test(self, expr: ast.Compare, lf: Fn) -> Fn:
        assert isinstance(expr.right, ast.Literal)
        text = str(expr.right.value)
        if expr.op is ast.CompareOp.STARTSWITH:
            return lambda c: isinstance(v := lf(c), str) and v.startswith(text)
        if expr.op is ast.CompareOp.ENDSWITH:
            return lambda c: isinstance(v := lf(c), str) and v.endswith(text)
        try:
            pattern = compile_regex(text)  # linear time on any input: policyengine/regex.py
        except RegexError as err:
            self.diags.error("compile/bad-regex", str(err), expr.right.span, err.help)
            return lambda c: False
        return lambda c: isinstance(v := lf(c), str) and pattern.search(v)

    def _check_types(self, expr: ast.Compare, left: Type, right: Type) -> None:
        op = expr.op
        if Type.ANY in (left, right) or Type.NULL in (left, right):
            return
        problem: str | None = None
        if op in (ast.CompareOp.EQ, ast.CompareOp.NE):
            if left != right and {left, right} != {Type.IP, Type.CIDR}:
                problem = f"compares a {left.value} with a {right.value}"
        elif op in (ast.CompareOp.IN, ast.CompareOp.NOT_IN):
            if right not in (Type.LIST, Type.CIDR):
                problem = f"`in` needs a list or a network on its right, not a {right.value}"
            elif right is Type.CIDR and left not in (Type.IP, Type.STRING):
                problem = f"a {left.value} is never in a network"
        elif op in (ast.CompareOp.MATCHES, ast.CompareOp.STARTSWITH, ast.CompareOp.ENDSWITH):
            if left is not Type.STRING:
                problem = f"`{op.value}` needs a string, not a {left.value}"
        elif left != right or left not in (Type.NUMBER, Type.STRING):
            problem = f"`{op.value}` compares a {left.value} with a {right.value}"
        if problem:
            self.diags.error(
                "compile/type-mismatch",
                f"this comparison {problem}",
                expr.span,
                "it could never be true",
            )
