"""What every part of the AST builder shares: literals decoded once, spans, errors."""

from __future__ import annotations

import re

from lark import Token
from lark.tree import Meta

from policyengine import ast
from policyengine.errors import Diagnostic
from policyengine.numbers import exact_float
from policyengine.source import Source, Span

_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
_PERIOD_NAMES = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
_SIZE_UNITS = {
    "B": 1,
    "KB": 1000,
    "KiB": 1024,
    "MB": 1000**2,
    "MiB": 1024**2,
    "GB": 1000**3,
    "GiB": 1024**3,
}
_UNIT = re.compile(r"(\d+)([A-Za-z]+)")
_ESCAPE = re.compile(r'\\(["\\])')


class AstBuildError(Exception):
    """A value the grammar accepts but the language does not (raised inside Lark)."""

    def __init__(self, diagnostic: Diagnostic) -> None:
        super().__init__(diagnostic.message)
        self.diagnostic = diagnostic


def unquote(token: str) -> str:
    """`"a \\" b"` -> `a " b`. Only `\\"` and `\\\\` are escapes: `"\\d+"` stays a regex."""
    return _ESCAPE.sub(r"\1", token[1:-1])


def duration_seconds(text: str) -> float:
    number, unit = _UNIT.fullmatch(text).groups()  # type: ignore[union-attr]
    return int(number) * _DURATION_UNITS[unit]


def parse_duration(text: str) -> float | None:
    """A duration as the language writes it (`30s`, `5m`, `100ms`), for command-line
    options too; None when `text` is not one."""
    match = _UNIT.fullmatch(text)
    if match is None or match.group(2) not in _DURATION_UNITS:
        return None
    return duration_seconds(text)


def size_bytes(text: str) -> int:
    number, unit = _UNIT.fullmatch(text).groups()  # type: ignore[union-attr]
    return int(number) * _SIZE_UNITS[unit]


MAX_NUMBER_LENGTH = 40


def _number(text: str) -> int | float:
    if len(text) > MAX_NUMBER_LENGTH:  # Python refuses huge int conversions; so do we, clearly
        raise ValueError(f"number longer than {MAX_NUMBER_LENGTH} characters")
    # a bound the engine would hold as another number than written is refused (numbers.py)
    return exact_float(text) if any(c in text for c in ".eE") else int(text)


class BuilderCore:
    """The helpers of AstBuilder's rule methods (to_ast.py, limits.py)."""

    source: Source

    def _span(self, meta: Meta) -> Span:
        if getattr(meta, "empty", True):
            return Span(self.source, 0, 0)
        return Span(self.source, meta.start_pos, meta.end_pos)

    def _tok_span(self, tok: Token) -> Span:
        start = tok.start_pos or 0
        return Span(self.source, start, tok.end_pos if tok.end_pos is not None else start)

    def _name(self, tok: Token) -> ast.Name:
        return ast.Name(str(tok), self._tok_span(tok))

    def _num(self, tok: Token) -> int | float:
        try:
            return _number(str(tok))
        except ValueError as err:
            raise self._fail("syntax/bad-number", str(err), self._tok_span(tok)) from None

    def _fail(self, code: str, message: str, span: Span, help: str | None = None) -> AstBuildError:
        return AstBuildError(Diagnostic(code, message, span, help))
