"""Tests that need policyengine's interpreted source, whatever is compiled: they
replace methods of classes that compiled callers reach without a lookup. Collected
only in a run with POLICYENGINE_INTERPRETED=1 (tests/test_inputs.py starts one),
where this hook makes imports from the repository read `.py` files alone."""

from __future__ import annotations

import importlib.machinery
import sys
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _sources_only(path: str) -> importlib.machinery.FileFinder:
    if not Path(path or ".").resolve().is_relative_to(REPO / "policyengine"):
        raise ImportError  # every other path keeps its usual finder (stdlib extensions)
    return importlib.machinery.FileFinder(
        path, (importlib.machinery.SourceFileLoader, importlib.machinery.SOURCE_SUFFIXES)
    )


assert "policyengine" not in sys.modules, "policyengine was imported before the hook"
_hook: Callable[[str], importlib.machinery.FileFinder] = _sources_only
sys.path_hooks.insert(0, _hook)
sys.path_importer_cache.clear()
