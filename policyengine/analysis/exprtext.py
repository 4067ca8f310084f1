"""Canonical text of a condition: printed from the AST, so spacing, comments and the
spelling of literals (`1m` or `60s`) do not make two equal conditions differ. With
`params`, path parameters are named by position (`path.#1`): renaming one is no change."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

from policyengine import ast

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


_NO_PARAMS: Mapping[str, str] = {}


def expr_text(expr: ast.Expr, params: Mapping[str, str] = _NO_PARAMS) -> str:
    if isinstance(expr, ast.Literal):
        return _literal(expr)
    if isinstance(expr, ast.ListExpr):
        return "[" + ", ".join(expr_text(item, params) for item in expr.items) + "]"
    if isinstance(expr, ast.Ref):
        keys = [part.key for part in expr.parts]
        if expr.root.value == "path" and keys and keys[0] in params:
            keys[0] = params[keys[0]]
        return expr.root.value + "".join(_part(key) for key in keys)
    if isinstance(expr, ast.Compare):
        return f"{_operand(expr.left, params)} {expr.op.value} {_operand(expr.right, params)}"
    if isinstance(expr, ast.Not):
        return f"not {_operand(expr.operand, params)}"
    return f" {expr.op.value} ".join(
        f"({expr_text(item, params)})" if isinstance(item, ast.BoolOp) else expr_text(item, params)
        for item in expr.operands
    )


def _operand(expr: ast.Expr, params: Mapping[str, str]) -> str:
    """Compound operands in parentheses, whether or not the author wrote them."""
    text = expr_text(expr, params)
    return f"({text})" if isinstance(expr, ast.Compare | ast.BoolOp | ast.Not) else text


def _part(key: str) -> str:
    return (
        f".{key}" if _IDENTIFIER.fullmatch(key) or key.startswith("#") else f"[{json.dumps(key)}]"
    )


def _literal(literal: ast.Literal) -> str:
    value = literal.value
    kind = literal.kind
    if kind is ast.LiteralKind.STRING:
        return json.dumps(value)
    if kind is ast.LiteralKind.BOOL:
        return "true" if value else "false"
    if kind is ast.LiteralKind.NULL:
        return "null"
    if kind is ast.LiteralKind.DURATION:
        return f"{value:g}s"
    if kind is ast.LiteralKind.SIZE:
        return f"{value}B"
    return str(value)  # int, number, CIDR
