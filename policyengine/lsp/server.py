"""`policyengine lsp`: a Language Server over stdio (pygls 2).

Diagnostics are `check`'s, published for every open file of the edited policy set on
open, change and save (an empty list once fixed); hover, go to definition, completion
and formatting (`fmt`) work from the same analysis. Positions are UTF-16 code units,
the protocol's default.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from lsprotocol import types
from pygls.lsp.server import LanguageServer
from pygls.uris import from_fs_path, to_fs_path
from pygls.workspace import TextDocument

from policyengine.ast import Method
from policyengine.errors import Diagnostic, PolicyError, Severity
from policyengine.expr import REFERENCE_ROOTS
from policyengine.fmt import format_source
from policyengine.lsp.analysis import Analysis, SymbolKind, analyze, policy_root, word_at
from policyengine.source import Source, Span
from policyengine.syntax import keywords

SOURCE = "policyengine"
_SEVERITY = {Severity.ERROR: types.DiagnosticSeverity.Error,
             Severity.WARNING: types.DiagnosticSeverity.Warning}  # fmt: skip
_COMPLETION_KIND = {
    SymbolKind.ROLE: types.CompletionItemKind.EnumMember,
    SymbolKind.SCHEMA: types.CompletionItemKind.Struct,
    SymbolKind.LIMIT: types.CompletionItemKind.Constant,
    SymbolKind.BAN: types.CompletionItemKind.Constant,
    SymbolKind.AUTHN: types.CompletionItemKind.Module,
}


def _version() -> str:
    try:
        return version("policyengine")
    except PackageNotFoundError:  # a source checkout that was never installed
        return "0"


def position(text: str, offset: int) -> types.Position:
    """An offset into `text` as a protocol position (line, UTF-16 column)."""
    offset = min(offset, len(text))
    line_start = text.rfind("\n", 0, offset) + 1
    column = len(text[line_start:offset].encode("utf-16-le")) // 2
    return types.Position(line=text.count("\n", 0, line_start), character=column)


def span_range(span: Span) -> types.Range:
    text = span.source.text
    return types.Range(start=position(text, span.start), end=position(text, span.end))


def to_protocol(diag: Diagnostic) -> types.Diagnostic:
    where = span_range(diag.span) if diag.span else types.Range(
        start=types.Position(line=0, character=0), end=types.Position(line=0, character=0)
    )  # fmt: skip
    return types.Diagnostic(
        range=where,
        message=diag.message + (f"\nhelp: {diag.help}" if diag.help else ""),
        severity=_SEVERITY[diag.severity],
        code=diag.code,
        source=SOURCE,
    )


class PolicyServer(LanguageServer):
    def __init__(self) -> None:
        super().__init__(
            SOURCE, _version(), text_document_sync_kind=types.TextDocumentSyncKind.Full
        )
        # by policy set root; any document event empties it (a compile is 20-60 ms)
        self.analyses: dict[Path, Analysis] = {}

    def open_texts(self) -> dict[Path, str]:
        return {_path(doc.uri): doc.source for doc in self.workspace.text_documents.values()}

    def analysis_for(self, uri: str) -> Analysis:
        root = policy_root(_path(uri))
        if root not in self.analyses:
            self.analyses[root] = analyze(root, self.open_texts())
        return self.analyses[root]

    def publish(self, uri: str) -> None:
        """Diagnostics for every open file of `uri`'s policy set, after a document event."""
        self.analyses.clear()
        analysis = self.analysis_for(uri)
        for doc in list(self.workspace.text_documents.values()):
            path = _path(doc.uri)
            if path not in analysis.diagnostics:
                continue
            items = [to_protocol(d) for d in analysis.diagnostics[path]]
            self.text_document_publish_diagnostics(
                types.PublishDiagnosticsParams(uri=doc.uri, diagnostics=items, version=doc.version)
            )


def _path(uri: str) -> Path:
    return Path(to_fs_path(uri) or uri).resolve()


def _word(doc: TextDocument, pos: types.Position) -> str:
    return word_at(doc.source, doc.offset_at_position(pos))


def build_server() -> PolicyServer:
    server = PolicyServer()

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: PolicyServer, params: types.DidOpenTextDocumentParams) -> None:
        ls.publish(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: PolicyServer, params: types.DidChangeTextDocumentParams) -> None:
        ls.publish(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_SAVE)
    def did_save(ls: PolicyServer, params: types.DidSaveTextDocumentParams) -> None:
        ls.publish(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: PolicyServer, params: types.DidCloseTextDocumentParams) -> None:
        # pygls has dropped the document: its diagnostics go, the rest of its set now
        # sees its text on disk
        uri = params.text_document.uri
        ls.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(uri=uri, diagnostics=[])
        )
        ls.publish(uri)

    @server.feature(types.TEXT_DOCUMENT_HOVER)
    def hover(ls: PolicyServer, params: types.HoverParams) -> types.Hover | None:
        doc = ls.workspace.get_text_document(params.text_document.uri)
        symbols = ls.analysis_for(doc.uri).lookup(_word(doc, params.position))
        if not symbols:
            return None
        text = "\n\n".join(s.hover_text() for s in symbols)
        return types.Hover(contents=types.MarkupContent(kind=types.MarkupKind.Markdown, value=text))

    @server.feature(types.TEXT_DOCUMENT_DEFINITION)
    def definition(ls: PolicyServer, params: types.DefinitionParams) -> list[types.Location]:
        doc = ls.workspace.get_text_document(params.text_document.uri)
        symbols = ls.analysis_for(doc.uri).lookup(_word(doc, params.position))
        return [
            types.Location(uri=from_fs_path(str(s.path)) or "", range=span_range(s.name_span))
            for s in symbols
        ]

    @server.feature(types.TEXT_DOCUMENT_COMPLETION)
    def completion(ls: PolicyServer, params: types.CompletionParams) -> types.CompletionList:
        analysis = ls.analysis_for(params.text_document.uri)
        items = [
            types.CompletionItem(label=w, kind=types.CompletionItemKind.Keyword) for w in keywords()
        ]
        items += [
            types.CompletionItem(label=m.value, kind=types.CompletionItemKind.Keyword)
            for m in Method
        ]
        items += [
            types.CompletionItem(label=r, kind=types.CompletionItemKind.Variable)
            for r in REFERENCE_ROOTS
        ]
        for name, symbols in sorted(analysis.symbols.items()):
            kinds = ", ".join(s.kind.value for s in symbols)
            kind = _COMPLETION_KIND[symbols[0].kind]
            items.append(types.CompletionItem(label=name, kind=kind, detail=kinds))
        return types.CompletionList(is_incomplete=False, items=items)

    @server.feature(types.TEXT_DOCUMENT_FORMATTING)
    def formatting(
        ls: PolicyServer, params: types.DocumentFormattingParams
    ) -> list[types.TextEdit]:
        doc = ls.workspace.get_text_document(params.text_document.uri)
        try:
            formatted = format_source(Source(Path(doc.path).name, doc.source))
        except PolicyError:
            return []  # the diagnostics already say why
        if formatted == doc.source:
            return []
        whole = types.Range(
            start=position(doc.source, 0), end=position(doc.source, len(doc.source))
        )
        return [types.TextEdit(range=whole, new_text=formatted)]

    return server


def main() -> None:
    build_server().start_io()
