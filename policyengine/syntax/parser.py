"""The Lark LALR parser, built once, and syntax errors in a policy author's words."""

from __future__ import annotations

from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from policyengine import ast
from policyengine.errors import Diagnostic, PolicyError
from policyengine.source import Source, Span
from policyengine.syntax.to_ast import AstBuilder, AstBuildError

_OPENERS = {"LPAR", "LSQB"}
_CLOSERS = {"RPAR", "RSQB"}
_SEPARATORS = {"NL", "SEMI"}


class SeparatorFolder:
    """Post-lexer: newlines and `;` become one `_SEP`, except where they cannot matter.

    Runs of separators fold into one; none at the start of the file, right after `{`,
    or inside ( ) or [ ] so long expressions can wrap. Tokens are passed on at once:
    the contextual lexer needs the parser to have seen each token before the next.
    """

    always_accept = tuple(_SEPARATORS)

    def process(self, stream: Iterator[Token]) -> Iterator[Token]:
        depth = 0
        previous: str | None = None
        for tok in stream:
            if tok.type in _SEPARATORS:
                if depth == 0 and previous not in (None, "LBRACE", "_SEP"):
                    previous = "_SEP"
                    yield Token.new_borrow_pos("_SEP", tok.value, tok)
                continue
            if tok.type in _OPENERS:
                depth += 1
            elif tok.type in _CLOSERS and depth > 0:
                depth -= 1
            previous = tok.type
            yield tok


def _grammar_text() -> str:
    shipped = resources.files("policyengine") / "_grammar" / "policy.lark"
    if shipped.is_file():
        return shipped.read_text(encoding="utf-8")
    # editable install / source checkout: the grammar lives at the top of the repo
    return (Path(__file__).resolve().parents[2] / "grammar" / "policy.lark").read_text("utf-8")


def _build_parser(**extra: Any) -> Lark:
    return Lark(
        _grammar_text(),
        parser="lalr",
        lexer="contextual",
        postlex=SeparatorFolder(),
        propagate_positions=True,
        maybe_placeholders=False,
        **extra,
    )


_PARSER = _build_parser()

_TERMINAL_WORDS = {
    "NAME": "a name",
    "STRING": 'a string in double quotes ("...")',
    "PATH": "a path starting with `/`",
    "NUMBER": "a number",
    "DURATION": "a duration like `10s`, `5m`, `1h`, `1d`",
    "SIZE": "a size like `16KiB` or `1MiB`",
    "CIDR": "an IP address or CIDR like `10.0.0.0/8`",
    "CIDR6": "an IPv6 address or CIDR",
    "_SEP": "a new line",
    "COMP_OP": "a comparison (`==`, `!=`, `<`, `<=`, `>`, `>=`)",
    "RANGE_DOTS": "a range like `1..100`",
    "ELLIPSIS": "`...`",
    "OPTIONAL": "`?`",
    "$END": "the end of the file",
}


def _describe_terminal(name: str) -> str:
    if name in _TERMINAL_WORDS:
        return _TERMINAL_WORDS[name]
    for term in _PARSER.terminals:
        if term.name == name and term.pattern.type == "str":
            return f"`{term.pattern.value}`"
    return name.lower()


_VALUE_STARTS = {"STRING", "NUMBER", "NAME", "LPAR"}


def _expected_words(expected: set[str]) -> str:
    if expected >= _VALUE_STARTS:  # the start of an operand: say so instead of listing tokens
        return "a value (string, number, list, IP network) or a reference like `claims.tenant`"
    words = sorted({_describe_terminal(n) for n in expected if n not in ("NL", "SEMI")})
    if len(words) > 8:
        return ", ".join(words[:8]) + ", ..."
    return ", ".join(words[:-1]) + (" or " if len(words) > 1 else "") + words[-1] if words else ""


def _syntax_diagnostic(source: Source, err: UnexpectedInput) -> Diagnostic:
    offset = getattr(err, "pos_in_stream", None) or 0
    if isinstance(err, UnexpectedToken):
        tok = err.token
        offset = tok.start_pos if tok.start_pos is not None else len(source.text)
        found = "end of file" if tok.type == "$END" else f"`{tok.value}`"
        if tok.type == "_SEP":
            found = "end of line"
        expected = _expected_words(set(err.expected))
        message = f"unexpected {found}" + (f", expected {expected}" if expected else "")
        end = offset + max(1, len(str(tok.value)) if tok.type not in ("_SEP", "$END") else 1)
    elif isinstance(err, UnexpectedCharacters):
        char = source.text[offset] if offset < len(source.text) else ""
        expected = _expected_words(set(err.allowed or ()))
        message = f"unexpected character `{char}`" + (f", expected {expected}" if expected else "")
        end = offset + 1
    else:
        message = "unexpected end of the file"
        offset, end = len(source.text), len(source.text) + 1
    offset = min(offset, max(len(source.text) - 1, 0))
    return Diagnostic("syntax/unexpected", message, Span(source, offset, max(end, offset + 1)))


def parse_source(source: Source, path: str = "") -> ast.PolicyFile:
    """Parse one file to its AST, or raise PolicyError with the syntax error."""
    try:
        tree: Tree[Token] = _PARSER.parse(source.text)
        statements = AstBuilder(source).build(tree)
    except UnexpectedInput as err:
        raise PolicyError([_syntax_diagnostic(source, err)]) from None
    except AstBuildError as err:
        raise PolicyError([err.diagnostic]) from None
    except RecursionError:  # Lark's tree walks recurse once per level of nesting
        span = Span(source, 0, min(1, len(source.text)))
        raise PolicyError(
            [
                Diagnostic(
                    "syntax/too-deep",
                    "the policy nests too deeply",
                    span,
                    "split long conditions and nested groups",
                )
            ]
        ) from None
    return ast.PolicyFile(source=source, path=path, statements=tuple(statements))


def keywords() -> tuple[str, ...]:
    """The grammar's words (`route`, `allow`, `matching`...), for editors to complete."""
    words = {
        str(term.pattern.value)
        for term in _PARSER.terminals
        if term.pattern.type == "str" and str(term.pattern.value).isalpha()
    }
    return tuple(sorted(words))


def comment_spans(source: Source) -> list[Span]:
    """Where the comments of a (valid) file are, for the formatter to keep them."""
    found: list[Token] = []
    parser = _build_parser(lexer_callbacks={"COMMENT": found.append})
    try:
        parser.parse(source.text)
    except UnexpectedInput as err:
        raise PolicyError([_syntax_diagnostic(source, err)]) from None
    return [Span(source, t.start_pos or 0, t.end_pos or 0) for t in found]
