"""`policyengine fmt`: canonical formatting that keeps every comment.

The AST gives the structure (blocks, items, order); each one-line item is printed from
its own source text with whitespace normalized, so spellings (`10s`, `minute`, `1.50`)
stay the author's. Comments are placed by position: before an item, at the end of its
line, or before a closing brace. The result parses to the same AST and is a fixed point.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from policyengine import ast
from policyengine.source import Source, Span
from policyengine.syntax import comment_spans, parse_source

INDENT = "    "
_STRING_OR_SPACE = re.compile(r'"(?:[^"\\\n]|\\.)*"|[ \t\r\n\f]+|\\\r?\n')
_PUNCTUATION_FIXES = (
    (re.compile(r" ([,:)\]?])"), r"\1"),  # no space before , : ) ] ?
    (re.compile(r"([(\[]) "), r"\1"),  # no space after ( [
    (re.compile(r"(?<=\d) +\.\.(?!\.)"), ".."),  # ranges: `1 .. 100` -> `1..100`
    (re.compile(r"(?<!\.)\.\. +(?=-?\d)"), ".."),  # `len .. 200` -> `len ..200`
    (re.compile(r"([A-Za-z0-9_\]]) \["), r"\1["),  # header["X"]
    (re.compile(r",(?=\S)"), ", "),
)
_FIELD_COLON = re.compile(r'^([A-Za-z_][\w-]*\??|"(?:[^"\\]|\\.)*") *: *')  # `a?:int`, `"g":r`


def _normalize_line(text: str) -> str:
    """Collapse whitespace outside strings and space punctuation canonically."""
    parts: list[str] = []
    last = 0
    for match in _STRING_OR_SPACE.finditer(text):
        parts.append(_fix_punctuation(text[last : match.start()]))
        token = match.group()
        parts.append(token if token.startswith('"') else " ")
        last = match.end()
    parts.append(_fix_punctuation(text[last:]))
    return _fix_spacing_around_strings("".join(parts).strip())


def _fix_punctuation(code: str) -> str:
    for pattern, replacement in _PUNCTUATION_FIXES[5:]:
        code = pattern.sub(replacement, code)
    return code


def _fix_spacing_around_strings(line: str) -> str:
    result: list[str] = []
    last = 0
    for match in re.finditer(r'"(?:[^"\\\n]|\\.)*"', line):
        code = _space_punctuation(line[last : match.start()])
        # a comma just before a string: `"a","b"` -> `"a", "b"` (scope and setting lists)
        result.append(f"{code} " if code.endswith(",") else code)
        result.append(match.group())
        last = match.end()
    result.append(_space_punctuation(line[last:]))
    return "".join(result)


def _space_punctuation(code: str) -> str:
    for pattern, replacement in _PUNCTUATION_FIXES[:5]:
        code = pattern.sub(replacement, code)
    return code


@dataclass
class _Comments:
    spans: list[Span]
    next: int = 0

    def before(self, offset: int) -> list[Span]:
        taken: list[Span] = []
        while self.next < len(self.spans) and self.spans[self.next].start < offset:
            taken.append(self.spans[self.next])
            self.next += 1
        return taken


class Formatter:
    def __init__(self, file: ast.PolicyFile, comments: list[Span]) -> None:
        self.text = file.source.text
        self.file = file
        self.comments = _Comments(sorted(comments, key=lambda s: s.start))
        self.lines: list[str] = []

    def format(self) -> str:
        self._items(self.file.statements, 0, len(self.text))
        return "\n".join(self.lines).strip("\n") + "\n"

    # -- layout ------------------------------------------------------------------------
    def _items(self, nodes: tuple[object, ...], depth: int, block_end: int) -> None:
        previous_end: int | None = None
        for node in nodes:
            span = _span_of(node)
            if previous_end is not None and self._blank_between(previous_end, span.start):
                self.lines.append("")
            self._leading_comments(span.start, depth)
            self._node(node, depth)
            self._trailing_comment(span.end)
            previous_end = span.end
        self._leading_comments(block_end, depth)

    def _blank_between(self, start: int, end: int) -> bool:
        gap = self.text[start:end]
        first_comment = next(
            (c.start for c in self.comments.spans[self.comments.next :] if c.start < end), end
        )
        return re.search(r"\n[ \t]*\r?\n", self.text[start:first_comment]) is not None or (
            "\n\n" in gap and first_comment == end
        )

    def _leading_comments(self, offset: int, depth: int) -> None:
        taken = self.comments.before(offset)
        for index, comment in enumerate(taken):
            self.lines.append(INDENT * depth + self.text[comment.start : comment.end].rstrip())
            following = taken[index + 1].start if index + 1 < len(taken) else offset
            if re.search(r"\n[ \t]*\r?\n", self.text[comment.end : following]):
                self.lines.append("")  # a comment set apart by a blank line stays apart

    def _trailing_comment(self, end: int) -> None:
        spans = self.comments.spans
        if self.comments.next < len(spans):
            comment = spans[self.comments.next]
            if self.text[end : comment.start].strip(" \t") == "":  # same line, nothing between
                self.lines[-1] += "  " + self.text[comment.start : comment.end].rstrip()
                self.comments.next += 1

    def _line(self, span: Span, depth: int) -> None:
        inner = [c for c in self.comments.spans[self.comments.next :] if c.end <= span.end]
        if inner:  # comments inside an item: keep its lines as written
            self.comments.next += len(inner)
            first, *rest = self.text[span.start : span.end].split("\n")
            self.lines.append(INDENT * depth + first.rstrip())
            self.lines.extend(line.rstrip() for line in rest)
            return
        self.lines.append(INDENT * depth + _normalize_line(self.text[span.start : span.end]))

    def _block(
        self,
        header: str,
        items: tuple[object, ...],
        depth: int,
        end: int,
        trailer: list[str] | None = None,
    ) -> None:
        if not items and not trailer and not self.comments.before(end):
            self.lines.append(INDENT * depth + header + " {}")
            return
        self.lines.append(INDENT * depth + header + " {")
        self._items(items, depth + 1, end)
        self.lines.extend(INDENT * (depth + 1) + t for t in trailer or [])
        self.lines.append(INDENT * depth + "}")

    # -- nodes ---------------------------------------------------------------------------
    def _node(self, node: object, depth: int) -> None:
        if isinstance(node, ast.AuthnBlock):
            name = f" {node.name.value}" if node.name else ""
            self._block(f"authn {node.kind.value}{name}", node.settings, depth, node.span.end - 1)
        elif isinstance(node, ast.Setting) and node.mapping is not None:
            head_end = node.groups[-1][-1].span.end if node.groups else node.key.span.end
            header = _normalize_line(self.text[node.span.start : head_end]) + " map"
            self._block(header, node.mapping, depth, node.span.end - 1)
        elif isinstance(node, ast.SchemaDecl) and isinstance(node.body, ast.InlineSchema):
            self._schema(f"schema {node.name.value}", node.body, depth)
        elif isinstance(node, ast.Group):
            self._block(f'group "{node.prefix}"', node.items, depth, node.span.end - 1)
        elif isinstance(node, ast.Route):
            targets = ", ".join(f"{t.method.value} {t.path}" for t in node.targets)
            self._block(f"route {targets}", node.rules, depth, node.span.end - 1)
        elif isinstance(node, ast.QueryRule):
            self._schema("query", node.schema, depth)
        elif isinstance(node, ast.Field | ast.MapEntry):
            first = len(self.lines)
            self._line(node.span, depth)
            self.lines[first] = INDENT * depth + _FIELD_COLON.sub(
                r"\1: ", self.lines[first].lstrip()
            )
        else:
            self._line(_span_of(node), depth)

    def _schema(self, header: str, schema: ast.InlineSchema, depth: int) -> None:
        self._block(
            header, schema.fields, depth, schema.span.end - 1, ["..."] if schema.open else None
        )


def _span_of(node: object) -> Span:
    span = getattr(node, "span", None)
    assert isinstance(span, Span)
    return span


def format_source(source: Source) -> str:
    """The canonical text of one policy file; raises PolicyError if it does not parse."""
    file = parse_source(source)
    return Formatter(file, comment_spans(source)).format()
