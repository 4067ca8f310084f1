"""Which files of a policy directory count, and the revision they make: the one walk
behind the reload watcher's fingerprint, a bundle's file list and the revision a server
reports, so that all three see the files the loader can read."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path


def visible_files(root: Path, limit: int = 10_000) -> list[Path]:
    """Every file below `root` the loader could read, in a stable order: hidden files and
    directories (`.git`) and `__pycache__`-like ones are skipped."""
    if root.is_file():
        return [root]
    paths: list[Path] = []
    for directory, subdirs, files in os.walk(root):
        subdirs[:] = sorted(d for d in subdirs if not d.startswith((".", "__")))
        paths.extend(Path(directory, f) for f in sorted(files) if not f.startswith("."))
        if len(paths) > limit:
            break
    return paths


def content_revision(digests: Mapping[str, str]) -> str:
    """The revision of a set of files, from each relative path and the hex sha256 of its
    content: a bundle's default revision, and a served directory's."""
    listing = "".join(f"{path}\0{digests[path]}\n" for path in sorted(digests)).encode()
    return "sha256-" + hashlib.sha256(listing).hexdigest()[:16]


def directory_revision(root: Path) -> str:
    """The revision `policyengine bundle build` would give the files below `root`."""
    digests: dict[str, str] = {}
    for path in visible_files(root):
        name = path.name if path == root else path.relative_to(root).as_posix()
        try:
            digests[name] = hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError:
            continue  # removed since the walk: the next poll reloads, and hashes again
    return content_revision(digests)
