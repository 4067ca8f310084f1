"""Lark parse tree to the AST (policyengine.ast). Values are decoded here, once."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from lark import Token, Tree
from lark.tree import Meta

from policyengine import ast
from policyengine.source import Source, Span
from policyengine.syntax.core import (
    MAX_NUMBER_LENGTH,
    AstBuildError,
    duration_seconds,
    size_bytes,
    unquote,
)
from policyengine.syntax.limits import LimitsBuilder

__all__ = [
    "MAX_NUMBER_LENGTH",
    "AstBuildError",
    "AstBuilder",
    "duration_seconds",
    "size_bytes",
    "unquote",
]


@dataclass(frozen=True, slots=True)
class _Scopes:
    """A `scope "a", "b"` clause between the rules that take one."""

    names: tuple[ast.Name, ...] = ()


class AstBuilder(LimitsBuilder):
    """Each method turns one grammar rule into AST nodes, with spans from Lark's meta.

    `build` walks the tree bottom-up itself, calling the method named after each rule
    with (meta, children). Lark's Transformer with `v_args(meta=True)` does the same but
    wraps every method on every lookup (functools.update_wrapper per node): that was
    half the time of turning a 10,000-route policy into its AST. Tokens pass through
    as they are; a rule without a method stays a Tree, as with a Transformer.
    """

    def __init__(self, source: Source) -> None:
        self.source = source
        cls = type(self)
        self._rules: dict[str, Any] = {
            name: getattr(self, name)
            for name in dir(cls)
            if not name.startswith("_") and name != "build" and callable(getattr(cls, name))
        }

    def build(self, tree: Tree[Token]) -> Any:
        children = [self.build(c) if type(c) is Tree else c for c in tree.children]
        method = self._rules.get(tree.data)
        if method is None:
            return Tree(tree.data, children, tree.meta)
        return method(tree.meta, children)

    # -- top level ---------------------------------------------------------------------
    def start(self, meta: Meta, items: list[ast.Statement]) -> list[ast.Statement]:
        return items

    def policy_name(self, meta: Meta, items: list[Token]) -> ast.PolicyName:
        return ast.PolicyName(unquote(items[0]), self._span(meta))

    def host_decl(self, meta: Meta, items: list[Token]) -> ast.HostDecl:
        hosts = tuple(ast.Name(unquote(t), self._tok_span(t)) for t in items)
        return ast.HostDecl(hosts, self._span(meta))

    def permit_decl(self, meta: Meta, items: list[Token]) -> ast.Permit:
        return ast.Permit(tuple(self._name(t) for t in items), self._span(meta))

    # -- authn -------------------------------------------------------------------------
    def authn_block(self, meta: Meta, items: list[Any]) -> ast.AuthnBlock:
        kind = self._name(items[0])
        has_name = len(items) > 1 and isinstance(items[1], Token)
        name = self._name(items[1]) if has_name else None
        settings = tuple(i for i in items[1 + has_name :])
        return ast.AuthnBlock(kind, name, settings, self._span(meta))

    def setting(self, meta: Meta, items: list[Any]) -> ast.Setting:
        groups = tuple(i for i in items[1:] if isinstance(i, tuple))
        mapping = next((i for i in items[1:] if isinstance(i, list)), None)
        return ast.Setting(
            self._name(items[0]),
            groups,
            tuple(mapping) if mapping is not None else None,
            self._span(meta),
        )

    def word_group(self, meta: Meta, items: list[Token]) -> tuple[ast.Word, ...]:
        return tuple(self._word(t) for t in items)

    def _word(self, tok: Token) -> ast.Word:
        span = self._tok_span(tok)
        text = str(tok)
        if tok.type == "STRING":
            return ast.Word(ast.WordKind.STRING, unquote(text), unquote(text), span)
        if tok.type == "NUMBER":
            return ast.Word(ast.WordKind.NUMBER, text, self._num(tok), span)
        if tok.type == "DURATION":
            return ast.Word(ast.WordKind.DURATION, text, duration_seconds(text), span)
        if tok.type == "SIZE":
            return ast.Word(ast.WordKind.SIZE, text, size_bytes(text), span)
        return ast.Word(ast.WordKind.NAME, text, text, span)

    def role_map(self, meta: Meta, items: list[ast.MapEntry]) -> list[ast.MapEntry]:
        return items

    def map_entry(self, meta: Meta, items: list[Token]) -> ast.MapEntry:
        return ast.MapEntry(unquote(items[0]), self._name(items[1]), self._span(meta))

    # -- roles -------------------------------------------------------------------------
    def role_decl(self, meta: Meta, items: list[Token]) -> ast.RoleDecl:
        return ast.RoleDecl(
            self._name(items[0]), tuple(self._name(t) for t in items[1:]), self._span(meta)
        )

    # -- schemas -----------------------------------------------------------------------
    def schema_inline(self, meta: Meta, items: list[Any]) -> ast.SchemaDecl:
        return ast.SchemaDecl(self._name(items[0]), items[1], self._span(meta))

    def schema_file(self, meta: Meta, items: list[Token]) -> ast.SchemaDecl:
        body = ast.SchemaFile(unquote(items[1]), self._tok_span(items[1]))
        return ast.SchemaDecl(self._name(items[0]), body, self._span(meta))

    def inline_schema(self, meta: Meta, items: list[ast.Field | Token]) -> ast.InlineSchema:
        fields: list[ast.Field] = []
        is_open = False
        for item in items:
            if isinstance(item, ast.Field):
                if is_open:
                    raise self._fail(
                        "syntax/open-not-last", "`...` must be the last field", item.span
                    )
                fields.append(item)
            else:
                is_open = True
        return ast.InlineSchema(tuple(fields), is_open, self._span(meta))

    def field(self, meta: Meta, items: list[Any]) -> ast.Field:
        optional = len(items) == 3
        return ast.Field(self._name(items[0]), optional, items[-1], self._span(meta))

    def open_marker(self, meta: Meta, items: list[Token]) -> Token:
        return items[0]

    def string_type(self, meta: Meta, items: list[tuple[str, Any]]) -> ast.StringType:
        mods: dict[str, Any] = {}
        for key, value in items:
            mods[key] = value
        matching = mods.get("matching")
        return ast.StringType(
            length=mods.get("len"),
            matching=unquote(matching) if matching is not None else None,
            matching_span=self._tok_span(matching) if matching is not None else None,
            format=mods.get("format"),
            span=self._span(meta),
        )

    def len_mod(self, meta: Meta, items: list[ast.Range]) -> tuple[str, Any]:
        return ("len", items[0])

    def matching_mod(self, meta: Meta, items: list[Token]) -> tuple[str, Any]:
        return ("matching", items[0])

    def format_mod(self, meta: Meta, items: list[Token]) -> tuple[str, Any]:
        return ("format", self._name(items[0]))

    def int_type(self, meta: Meta, items: list[ast.Range]) -> ast.IntType:
        return ast.IntType(items[0] if items else None, self._span(meta))

    def number_type(self, meta: Meta, items: list[ast.Range]) -> ast.NumberType:
        return ast.NumberType(items[0] if items else None, self._span(meta))

    def bool_type(self, meta: Meta, items: list[Any]) -> ast.BoolType:
        return ast.BoolType(self._span(meta))

    def array_type(self, meta: Meta, items: list[Any]) -> ast.ArrayType:
        return ast.ArrayType(items[0], items[1] if len(items) > 1 else None, self._span(meta))

    def enum_type(self, meta: Meta, items: list[Token]) -> ast.EnumType:
        return ast.EnumType(tuple(unquote(t) for t in items), self._span(meta))

    def schema_ref(self, meta: Meta, items: list[Token]) -> ast.SchemaRef:
        return ast.SchemaRef(self._name(items[0]))

    def range(self, meta: Meta, items: list[Token]) -> ast.Range:
        low: int | float | None = None
        high: int | float | None = None
        seen_dots = False
        for tok in items:
            if tok.type == "RANGE_DOTS":
                seen_dots = True
            elif seen_dots:
                high = self._num(tok)
            else:
                low = self._num(tok)
        return ast.Range(low, high, self._span(meta))

    # -- routes ------------------------------------------------------------------------
    def group(self, meta: Meta, items: list[Any]) -> ast.Group:
        return ast.Group(unquote(items[0]), tuple(items[1:]), self._span(meta))

    def route(self, meta: Meta, items: list[Any]) -> ast.Route:
        targets = tuple(i for i in items if isinstance(i, ast.RouteTarget))
        rules = tuple(i for i in items if not isinstance(i, ast.RouteTarget))
        span = self._span(meta)
        header = Span(self.source, span.start, targets[-1].span.end)
        return ast.Route(targets, rules, span, header)

    def route_target(self, meta: Meta, items: list[Token]) -> ast.RouteTarget:
        method_tok, path_tok = items
        try:
            method = ast.Method(str(method_tok))
        except ValueError:
            raise self._fail(
                "syntax/unknown-method",
                f"unknown method `{method_tok}`",
                self._tok_span(method_tok),
                "methods are `GET`, `HEAD`, `POST`, `PUT`, `PATCH`, `DELETE`, `OPTIONS`, `ANY`",
            ) from None
        return ast.RouteTarget(method, str(path_tok), self._tok_span(path_tok), self._span(meta))

    def name_list(self, meta: Meta, items: list[Token]) -> tuple[ast.Name, ...]:
        return tuple(self._name(t) for t in items)

    def when(self, meta: Meta, items: list[Any]) -> ast.Expr:
        return self._expr(items[0])

    def allow_anyone(self, meta: Meta, items: list[Any]) -> ast.AllowAnyone:
        return ast.AllowAnyone(self._span(meta))

    def allow_authenticated(self, meta: Meta, items: list[Any]) -> ast.AllowAuthenticated:
        return ast.AllowAuthenticated(items[0] if items else None, self._span(meta))

    def allow_role(self, meta: Meta, items: list[Any]) -> ast.AllowRole:
        scopes = next((i for i in items[1:] if isinstance(i, _Scopes)), _Scopes())
        when = next((i for i in items[1:] if not isinstance(i, _Scopes)), None)
        return ast.AllowRole(items[0], when, self._span(meta), scopes.names)

    def allow_scope(self, meta: Meta, items: list[Any]) -> ast.AllowAuthenticated:
        when = items[1] if len(items) > 1 else None
        return ast.AllowAuthenticated(when, self._span(meta), items[0].names)

    def scope_list(self, meta: Meta, items: list[Token]) -> _Scopes:
        return _Scopes(tuple(ast.Name(unquote(str(t)), self._tok_span(t)) for t in items))

    def allow_when(self, meta: Meta, items: list[Any]) -> ast.AllowWhen:
        return ast.AllowWhen(items[0], self._span(meta))

    def deny_role(self, meta: Meta, items: list[Any]) -> ast.Deny:
        return ast.Deny(items[0], items[1] if len(items) > 1 else None, self._span(meta))

    def deny_when(self, meta: Meta, items: list[Any]) -> ast.Deny:
        return ast.Deny((), items[0], self._span(meta))

    def require_authn(self, meta: Meta, items: list[Any]) -> ast.RequireAuthn:
        return ast.RequireAuthn(items[0], self._span(meta))

    def body_rule(self, meta: Meta, items: list[Token]) -> ast.BodyRule:
        max_bytes = size_bytes(items[1]) if len(items) > 1 else None
        return ast.BodyRule(self._name(items[0]), max_bytes, self._span(meta))

    def query_rule(self, meta: Meta, items: list[ast.InlineSchema]) -> ast.QueryRule:
        return ast.QueryRule(items[0], self._span(meta))

    def limit_rule(self, meta: Meta, items: list[Any]) -> ast.LimitRule:
        return ast.LimitRule(items[0], self._span(meta))

    def ban_rule(self, meta: Meta, items: list[Any]) -> ast.BanRule:
        return ast.BanRule(items[0], self._span(meta))

    # -- expressions -------------------------------------------------------------------
    def _bool_op(self, kind: ast.BoolOpKind, meta: Meta, items: list[Any]) -> ast.Expr:
        # an aliased `?` rule is not inlined by Lark: a single operand is just that operand
        if len(items) == 1:
            return self._expr(items[0])
        return ast.BoolOp(kind, tuple(self._expr(i) for i in items), self._span(meta))

    def or_(self, meta: Meta, items: list[Any]) -> ast.Expr:
        return self._bool_op(ast.BoolOpKind.OR, meta, items)

    def and_(self, meta: Meta, items: list[Any]) -> ast.Expr:
        return self._bool_op(ast.BoolOpKind.AND, meta, items)

    def not_(self, meta: Meta, items: list[ast.Expr]) -> ast.Not:
        return ast.Not(self._expr(items[0]), self._span(meta))

    def compare(self, meta: Meta, items: list[Any]) -> ast.Compare:
        left, op, right = items
        return ast.Compare(
            ast.CompareOp(str(op)), self._expr(left), self._expr(right), self._span(meta)
        )

    def _binary(self, op: ast.CompareOp, meta: Meta, items: list[Any]) -> ast.Compare:
        return ast.Compare(op, self._expr(items[0]), self._expr(items[1]), self._span(meta))

    def in_(self, meta: Meta, items: list[Any]) -> ast.Compare:
        return self._binary(ast.CompareOp.IN, meta, items)

    def not_in(self, meta: Meta, items: list[Any]) -> ast.Compare:
        return self._binary(ast.CompareOp.NOT_IN, meta, items)

    def matches(self, meta: Meta, items: list[Any]) -> ast.Compare:
        return self._binary(ast.CompareOp.MATCHES, meta, items)

    def startswith(self, meta: Meta, items: list[Any]) -> ast.Compare:
        return self._binary(ast.CompareOp.STARTSWITH, meta, items)

    def endswith(self, meta: Meta, items: list[Any]) -> ast.Compare:
        return self._binary(ast.CompareOp.ENDSWITH, meta, items)

    def list_(self, meta: Meta, items: list[Any]) -> ast.ListExpr:
        return ast.ListExpr(tuple(self._expr(i) for i in items), self._span(meta))

    def true(self, meta: Meta, items: list[Any]) -> ast.Literal:
        return ast.Literal(ast.LiteralKind.BOOL, True, self._span(meta))

    def false(self, meta: Meta, items: list[Any]) -> ast.Literal:
        return ast.Literal(ast.LiteralKind.BOOL, False, self._span(meta))

    def null(self, meta: Meta, items: list[Any]) -> ast.Literal:
        return ast.Literal(ast.LiteralKind.NULL, None, self._span(meta))

    def ref(self, meta: Meta, items: list[Any]) -> ast.Ref:
        return ast.Ref(self._name(items[0]), tuple(items[1:]), self._span(meta))

    def dot_part(self, meta: Meta, items: list[Token]) -> ast.RefPart:
        return ast.RefPart(str(items[0]), self._tok_span(items[0]))

    def index_part(self, meta: Meta, items: list[Token]) -> ast.RefPart:
        return ast.RefPart(unquote(items[0]), self._tok_span(items[0]))

    def _expr(self, item: Any) -> ast.Expr:
        """Operands arrive as AST nodes or, for bare literals, as tokens."""
        if not isinstance(item, Token):
            return item  # type: ignore[no-any-return]
        span = self._tok_span(item)
        text = str(item)
        if item.type == "STRING":
            return ast.Literal(ast.LiteralKind.STRING, unquote(text), span)
        if item.type == "NUMBER":
            value = self._num(item)
            kind = ast.LiteralKind.INT if isinstance(value, int) else ast.LiteralKind.NUMBER
            return ast.Literal(kind, value, span)
        if item.type == "DURATION":
            return ast.Literal(ast.LiteralKind.DURATION, duration_seconds(text), span)
        if item.type == "SIZE":
            return ast.Literal(ast.LiteralKind.SIZE, size_bytes(text), span)
        if item.type in ("CIDR", "CIDR6"):
            try:
                network = ipaddress.ip_network(text, strict=False)
            except ValueError:
                raise self._fail(
                    "syntax/bad-cidr", f"`{text}` is not an IP address or CIDR", span
                ) from None
            return ast.Literal(ast.LiteralKind.CIDR, network, span)
        raise self._fail("syntax/unexpected", f"unexpected `{text}`", span)
