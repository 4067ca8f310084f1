"""`policyengine lsp` driven over stdio in a subprocess, as an editor drives it: framed
JSON-RPC in, diagnostics, hover, definitions, completion and formatting out."""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest

from policyengine.fmt import format_source
from policyengine.source import Source

TIMEOUT = 20.0

A_POLICY = """policy "shop"
role user
role admin inherits user
limit orders_per_user 5 per 10s by subject
route POST /orders {
    allow role admn
    body Order
    limit orders_per_user
}
"""
B_POLICY = """schema Order {
    productId: string matching "^[A-Z0-9]{8}$"
    quantity:  int 1..100
}
"""


class Client:
    """A language client: numbered requests, notifications kept in arrival order."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc
        self.next_id = 0
        self.inbox: queue.Queue[dict[str, Any]] = queue.Queue()
        self.published: dict[str, list[dict[str, Any]]] = {}  # the latest, by document
        assert proc.stdout is not None
        threading.Thread(target=self._read, args=(proc.stdout,), daemon=True).start()

    def _read(self, stream: IO[bytes]) -> None:
        while True:
            length = 0
            while (line := stream.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode().partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            if not line:
                return
            self.inbox.put(json.loads(stream.read(length)))

    def send(self, message: dict[str, Any]) -> None:
        body = json.dumps({"jsonrpc": "2.0", **message}).encode()
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.proc.stdin.flush()

    def notify(self, method: str, params: dict[str, Any]) -> None:
        self.send({"method": method, "params": params})

    def request(self, method: str, params: dict[str, Any] | None) -> Any:
        self.next_id += 1
        self.send({"id": self.next_id, "method": method, "params": params})
        for message in self._messages():
            if message.get("id") == self.next_id and "method" not in message:
                assert "error" not in message, message
                return message["result"]
        raise AssertionError("no answer")

    def diagnostics(self, uri: str) -> list[dict[str, Any]]:
        for message in self._messages():
            method, params = message.get("method"), message.get("params") or {}
            if method == "textDocument/publishDiagnostics" and params["uri"] == uri:
                return list(params["diagnostics"])
        raise AssertionError("no diagnostics")

    def _messages(self) -> Iterator[dict[str, Any]]:
        while True:
            try:
                message = self.inbox.get(timeout=TIMEOUT)
            except queue.Empty:
                raise AssertionError("the server said nothing") from None
            if message.get("method") == "textDocument/publishDiagnostics":
                self.published[message["params"]["uri"]] = message["params"]["diagnostics"]
            yield message


@pytest.fixture
def client() -> Iterator[Client]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "policyengine", "lsp"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        yield Client(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=TIMEOUT)
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            assert stream is not None
            stream.close()


def _doc(uri: str, version: int) -> dict[str, Any]:
    return {"uri": uri, "version": version}


def _at(line: int, character: int, uri: str) -> dict[str, Any]:
    return {"textDocument": {"uri": uri}, "position": {"line": line, "character": character}}


def test_a_session(client: Client, tmp_path: Path) -> None:
    (tmp_path / "a.policy").write_text(A_POLICY)
    (tmp_path / "schemas.policy").write_text(B_POLICY)  # on disk only, never opened
    uri = (tmp_path / "a.policy").as_uri()
    init = client.request(
        "initialize", {"processId": None, "rootUri": tmp_path.as_uri(), "capabilities": {}}
    )
    caps = init["capabilities"]
    assert caps["hoverProvider"] and caps["definitionProvider"]
    assert caps["documentFormattingProvider"] and "completionProvider" in caps
    client.notify("initialized", {})

    # open with an error: check's diagnostic, with its code, range and help
    item = {"uri": uri, "languageId": "policy", "version": 1, "text": A_POLICY}
    client.notify("textDocument/didOpen", {"textDocument": item})
    [diag] = client.diagnostics(uri)
    assert diag["code"] == "compile/unknown-role"
    assert diag["severity"] == 1
    assert diag["range"] == {
        "start": {"line": 5, "character": 15},
        "end": {"line": 5, "character": 19},
    }
    assert "unknown role `admn`" in diag["message"]
    assert "help:" in diag["message"]

    # a syntax error while typing, then the fix: the list is emptied
    broken = A_POLICY.replace("allow role admn", "allow role")
    client.notify(
        "textDocument/didChange",
        {"textDocument": _doc(uri, 2), "contentChanges": [{"text": broken}]},
    )
    [diag] = client.diagnostics(uri)
    assert diag["code"] == "syntax/unexpected"
    assert diag["range"]["start"]["line"] == 5
    fixed = A_POLICY.replace("admn", "admin")
    client.notify(
        "textDocument/didChange",
        {"textDocument": _doc(uri, 3), "contentChanges": [{"text": fixed}]},
    )
    assert client.diagnostics(uri) == []

    # hover on a schema declared in another file, a role, a limit
    hover = client.request("textDocument/hover", _at(6, 11, uri))  # body Or|der
    assert hover["contents"]["kind"] == "markdown"
    assert "schema Order {" in hover["contents"]["value"]
    assert "quantity:  int 1..100" in hover["contents"]["value"]
    assert "schemas.policy:1" in hover["contents"]["value"]
    hover = client.request("textDocument/hover", _at(5, 17, uri))  # allow role adm|in
    assert "role admin inherits user" in hover["contents"]["value"]
    hover = client.request("textDocument/hover", _at(7, 12, uri))
    assert "limit orders_per_user 5 per 10s by subject" in hover["contents"]["value"]
    assert client.request("textDocument/hover", _at(4, 2, uri)) is None  # `route`: no symbol

    # go to definition: into the other file, and within this one
    [loc] = client.request("textDocument/definition", _at(6, 11, uri))
    assert loc["uri"] == (tmp_path / "schemas.policy").as_uri()
    assert loc["range"]["start"] == {"line": 0, "character": 7}
    [loc] = client.request("textDocument/definition", _at(7, 12, uri))
    assert loc["uri"] == uri
    assert loc["range"] == {
        "start": {"line": 3, "character": 6},
        "end": {"line": 3, "character": 21},
    }

    # completion: the grammar's keywords, methods, references and declared names
    result = client.request("textDocument/completion", _at(5, 4, uri))
    labels = {item["label"] for item in result["items"]}
    assert {"route", "allow", "matching", "inherits", "scope", "startswith"} <= labels
    assert {"GET", "DELETE", "claims", "client_ip"} <= labels
    assert {"user", "admin", "Order", "orders_per_user"} <= labels

    # formatting: `fmt`'s output, as one edit
    messy = "role  user\nroute GET /x {allow   anyone}\n"
    client.notify(
        "textDocument/didChange",
        {"textDocument": _doc(uri, 4), "contentChanges": [{"text": messy}]},
    )
    client.diagnostics(uri)
    params = {"textDocument": {"uri": uri}, "options": {"tabSize": 4, "insertSpaces": True}}
    [edit] = client.request("textDocument/formatting", params)
    assert edit["newText"] == format_source(Source("a.policy", messy))
    assert edit["range"]["start"] == {"line": 0, "character": 0}
    assert edit["range"]["end"] == {"line": 2, "character": 0}

    assert client.request("shutdown", None) is None
    client.notify("exit", {})
    assert client.proc.wait(timeout=TIMEOUT) == 0


def test_diagnostics_follow_other_files_of_the_set(client: Client, tmp_path: Path) -> None:
    """A schema removed in one open file is an error in the other that uses it; a
    position after non-ASCII text counts UTF-16 units."""
    (tmp_path / "a.policy").write_text(A_POLICY)
    (tmp_path / "schemas.policy").write_text(B_POLICY)
    client.request("initialize", {"processId": None, "rootUri": None, "capabilities": {}})
    client.notify("initialized", {})
    a_uri, b_uri = (tmp_path / "a.policy").as_uri(), (tmp_path / "schemas.policy").as_uri()
    line = '    allow role user when claims.a == "🛒" or nope == 1'
    text = A_POLICY.replace("    allow role admn", line)
    for uri, body in ((a_uri, text), (b_uri, B_POLICY)):
        item = {"uri": uri, "languageId": "policy", "version": 1, "text": body}
        client.notify("textDocument/didOpen", {"textDocument": item})
    renamed = B_POLICY.replace("schema Order", "schema Orders")
    client.notify(
        "textDocument/didChange",
        {"textDocument": _doc(b_uri, 2), "contentChanges": [{"text": renamed}]},
    )
    # messages are answered in order: every publish for the change precedes this answer
    assert client.request("textDocument/hover", _at(0, 1, a_uri)) is None
    by_code = {d["code"]: d["range"]["start"] for d in client.published[a_uri]}
    assert set(by_code) == {"compile/unknown-schema", "compile/unknown-reference"}
    # the emoji before `nope` is one code point and two UTF-16 units
    assert by_code["compile/unknown-reference"] == {"line": 5, "character": line.index("nope") + 1}
    assert client.published[b_uri] == []
    assert client.request("shutdown", None) is None
    client.notify("exit", {})
    assert client.proc.wait(timeout=TIMEOUT) == 0


def test_missing_extra_names_it() -> None:
    script = (
        "import sys; sys.modules['pygls'] = None\nfrom policyengine.cli import main\nmain(['lsp'])"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "pip install 'policyengine[lsp]'" in proc.stderr
