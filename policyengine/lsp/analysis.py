"""What the language server knows of a policy set, without any protocol: the diagnostics
`check` would print (with the editor's unsaved text), and the declared names.

A file's policy set is its directory, or the highest directory above it that still
holds `*.policy` files itself (a set includes its subdirectories, as `check` reads it).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from policyengine import ast
from policyengine.compile import compile_policy_set
from policyengine.errors import Diagnostic, PolicyError
from policyengine.loader import display_name, parse_file, policy_files
from policyengine.source import Source, Span
from policyengine.syntax import parse_source

_WORD = re.compile(r"[A-Za-z0-9_\-]")
MAX_HOVER_LINES = 30


class SymbolKind(Enum):
    ROLE = "role"
    SCHEMA = "schema"
    LIMIT = "limit"
    BAN = "ban"
    AUTHN = "authn"


@dataclass(frozen=True, slots=True)
class Symbol:
    kind: SymbolKind
    name: str
    path: Path
    name_span: Span  # where go-to-definition lands
    declaration: Span  # the whole declaration, shown on hover

    def hover_text(self) -> str:
        text = self.declaration.source.text[self.declaration.start : self.declaration.end]
        lines = text.splitlines()
        if len(lines) > MAX_HOVER_LINES:
            lines = [*lines[:MAX_HOVER_LINES], "    ..."]
        where = f"{self.declaration.source.name}:{self.declaration.line}"
        return "```\n" + "\n".join(lines) + f"\n```\n{self.kind.value}, {where}"


@dataclass(frozen=True, slots=True)
class Analysis:
    root: Path
    diagnostics: dict[Path, tuple[Diagnostic, ...]]  # every file of the set, maybe empty
    symbols: dict[str, tuple[Symbol, ...]]  # by name: a role and a schema may share one

    def lookup(self, name: str) -> tuple[Symbol, ...]:
        return self.symbols.get(name, ())


def policy_root(file: Path) -> Path:
    root = file.parent
    while root.parent != root and any(root.parent.glob("*.policy")):
        root = root.parent
    return root


def analyze(root: Path, texts: Mapping[Path, str]) -> Analysis:
    """Parse every file (open ones from `texts`, keyed by resolved path) and compile."""
    root = root.resolve()
    paths = {p.resolve() for p in policy_files(root)}
    paths.update(p for p in texts if p.suffix == ".policy" and p.is_relative_to(root))
    by_name = {display_name(p, root): p for p in paths}
    files: list[ast.PolicyFile] = []
    found: list[Diagnostic] = []
    for path in sorted(paths):
        try:
            files.append(_parse(path, root, texts.get(path)))
        except PolicyError as err:
            found.extend(err.diagnostics)
    if not found:
        try:
            found.extend(compile_policy_set(ast.PolicySet(tuple(files))).warnings)
        except PolicyError as err:
            found.extend(err.diagnostics)
    diagnostics: dict[Path, list[Diagnostic]] = {p: [] for p in paths}
    for diag in found:
        target = by_name.get(diag.span.source.name) if diag.span else None
        for path in [target] if target else paths:  # no span: the whole set is concerned
            diagnostics[path].append(diag)
    return Analysis(
        root=root,
        diagnostics={p: tuple(d) for p, d in diagnostics.items()},
        symbols=_symbols(files, by_name),
    )


def _parse(path: Path, root: Path, text: str | None) -> ast.PolicyFile:
    if text is None:
        return parse_file(path, root)
    return parse_source(Source(display_name(path, root), text), str(path))


def _symbols(
    files: list[ast.PolicyFile], by_name: dict[str, Path]
) -> dict[str, tuple[Symbol, ...]]:
    found: dict[str, list[Symbol]] = {}
    for file in files:
        path = by_name[file.source.name]
        for node in file.statements:
            symbol = _symbol(node, path)
            if symbol is not None:
                found.setdefault(symbol.name, []).append(symbol)
    return {name: tuple(symbols) for name, symbols in found.items()}


def _symbol(node: ast.Statement, path: Path) -> Symbol | None:
    if isinstance(node, ast.RoleDecl):
        return Symbol(SymbolKind.ROLE, node.name.value, path, node.name.span, node.span)
    if isinstance(node, ast.SchemaDecl):
        return Symbol(SymbolKind.SCHEMA, node.name.value, path, node.name.span, node.span)
    if isinstance(node, ast.LimitDecl):
        return Symbol(SymbolKind.LIMIT, node.name.value, path, node.name.span, node.span)
    if isinstance(node, ast.BanDecl):
        return Symbol(SymbolKind.BAN, node.name.value, path, node.name.span, node.span)
    if isinstance(node, ast.AuthnBlock):
        name = node.name or node.kind
        return Symbol(SymbolKind.AUTHN, name.value, path, name.span, node.span)
    return None


def word_at(text: str, offset: int) -> str:
    """The name (letters, digits, `_`, `-`) around a character offset, or ``."""
    start = offset
    while start > 0 and _WORD.match(text[start - 1]):
        start -= 1
    end = offset
    while end < len(text) and _WORD.match(text[end]):
        end += 1
    return text[start:end]
