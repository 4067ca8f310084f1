"""The package's shape: imports run downwards only, and no module outgrows its concept.

The import graph is read with `ast` from the sources, so it counts every import: at module
level, under `TYPE_CHECKING`, and inside functions. Importing `a.b.c` from outside `a.b`
runs `a/b/__init__.py`, so that counts as an import of `a.b` too.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "policyengine"
MAX_LINES = 500


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _imported(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The package's modules that importing `name` runs, directly."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            targets.add(base)
            targets.update(f"{base}.{alias.name}" for alias in node.names)
    found: set[str] = set()
    for target in targets & modules.keys():
        parts = target.split(".")
        found.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    # the packages the importer stands inside are already being imported
    return {m for m in found if not (name == m or name.startswith(m + "."))}


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imported(name, path, modules) for name, path in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected component of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _where(component: list[str], graph: dict[str, set[str]]) -> str:
    members = set(component)
    return "\n".join(f"  {a} -> {b}" for a in component for b in sorted(graph[a] & members))


def test_the_import_graph_reads_imports_of_every_kind() -> None:
    graph = import_graph()
    assert "policyengine.decision" in graph["policyengine.engine"]  # module level
    # a package imported through one of its modules runs its __init__
    assert "policyengine.ratelimit" in graph["policyengine.engine"]


def test_no_import_circle() -> None:
    graph = import_graph()
    cycles = _cycles(graph)
    assert not cycles, "import circles:\n" + "\n\n".join(_where(c, graph) for c in cycles)


def test_the_cycle_finder_finds_a_circle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_module_over_500_lines() -> None:
    sizes = {
        str(path.relative_to(PACKAGE.parent)): len(path.read_text().splitlines())
        for path in PACKAGE.rglob("*.py")
    }
    assert not {path: n for path, n in sizes.items() if n > MAX_LINES}


_LOADED = textwrap.dedent(
    """
    import hashlib, sys, tempfile
    from pathlib import Path
    from policyengine import Engine, Request
    directory = tempfile.mkdtemp()
    digest = hashlib.sha256(b"k-1").hexdigest()
    Path(directory, "keys.yaml").write_text(
        f'keys:\\n  - sha256: "{digest}"\\n    subject: ann\\n    roles: [user]\\n'
    )
    engine = Engine.from_text(\'\'\'
    policy "p"
    authn api_key { header "X-Key"; keys file "keys.yaml" }
    role user
    limit per_user 5 per minute by subject
    route GET /a {
        allow role user
        limit per_user
    }
    \'\'\', directory=directory)
    decision = engine.decide(Request("GET", "/a", {"X-Key": "k-1"}))
    assert decision.allow, decision
    print(" ".join(sorted(m for m in ("jwt", "cryptography", "redis") if m in sys.modules)))
    """
)


def test_a_policy_without_jwt_or_redis_imports_neither() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _LOADED], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""
