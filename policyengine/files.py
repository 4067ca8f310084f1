"""Which files of a policy directory count: the one walk behind the reload watcher's
fingerprint and a bundle's file list, so that both see the files the loader can read."""

from __future__ import annotations

import os
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
