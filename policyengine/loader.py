"""Policy sets from disk: every `*.policy` below a directory, parsed file by file."""

from __future__ import annotations

import os
from pathlib import Path

from policyengine import ast
from policyengine.errors import Diagnostic, PolicyError
from policyengine.gcpause import collector_paused
from policyengine.source import Source
from policyengine.syntax import parse_source

MAX_POLICY_BYTES = 4 * 1024 * 1024


def display_name(path: Path, root: Path) -> str:
    """A file's name relative to its policy set, so decisions cite `retail.policy:47`
    wherever the engine was started."""
    base = root if root.is_dir() else root.parent
    return path.relative_to(base).as_posix()


def policy_files(root: Path) -> list[Path]:
    if root.is_file():
        return [root]
    return sorted(p for p in root.rglob("*.policy") if p.is_file())


def load_policy_set(root: str | os.PathLike[str]) -> ast.PolicySet:
    """Parse every file; syntax errors of all files are reported together."""
    with collector_paused():
        return _load(root)


def _load(root: str | os.PathLike[str]) -> ast.PolicySet:
    root_path = Path(root)
    if not root_path.exists():
        raise PolicyError([Diagnostic("load/not-found", f"`{root_path}` does not exist", None)])
    paths = policy_files(root_path)
    if not paths:
        raise PolicyError([Diagnostic("load/empty", f"no `*.policy` files in `{root_path}`", None)])
    files: list[ast.PolicyFile] = []
    problems: list[Diagnostic] = []
    for path in paths:
        try:
            files.append(parse_file(path, root_path))
        except PolicyError as err:
            problems.extend(err.diagnostics)
    if problems:
        raise PolicyError(problems)
    return ast.PolicySet(tuple(files))


def parse_file(path: Path, root: Path) -> ast.PolicyFile:
    try:
        raw = path.read_bytes()
        if len(raw) > MAX_POLICY_BYTES:
            raise PolicyError(
                [Diagnostic("load/too-large", f"`{path}` is larger than 4 MiB", None)]
            )
        text = raw.decode("utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise PolicyError(
            [Diagnostic("load/unreadable", f"cannot read `{path}`: {err}", None)]
        ) from None
    return parse_source(Source(display_name(path, root), text), str(path))


def parse_text(text: str, name: str = "inline.policy", directory: str = ".") -> ast.PolicySet:
    """A one-file policy set from a string (tests, the Python API)."""
    with collector_paused():
        source = Source(name, text)
        return ast.PolicySet((parse_source(source, str(Path(directory) / name)),))
