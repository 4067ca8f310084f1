"""The suite runs the modules as they ship: compiled with mypyc where pyproject.toml
says so. A compiled module shadows its source, so a source edited after the last
`make install` would go untested: the session stops instead."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
INTERPRETED = os.environ.get("POLICYENGINE_INTERPRETED") == "1"
# tests/interpreted runs in its own interpreter (tests/test_inputs.py starts it)
collect_ignore = [] if INTERPRETED else ["interpreted"]


def compiled_sources() -> list[Path]:
    with (REPO / "pyproject.toml").open("rb") as f:
        config = tomllib.load(f)
    hook = config["tool"]["hatch"]["build"]["targets"]["wheel"]["hooks"]["mypyc"]
    return [REPO / name for name in hook["include"]]


def extensions_of(source: Path) -> list[Path]:
    return sorted(source.parent.glob(f"{source.stem}.*.so"))


def pytest_sessionstart(session: pytest.Session) -> None:
    stale, missing = [], []
    for source in compiled_sources():
        built = extensions_of(source)
        if not built:
            missing.append(source.relative_to(REPO))
        elif any(so.stat().st_mtime < source.stat().st_mtime for so in built):
            stale.append(source.relative_to(REPO))
    if stale:
        pytest.exit(
            f"compiled modules older than their source: {', '.join(map(str, stale))}; "
            "run `make install` (or `pip install -e .`) to compile them again",
            returncode=2,
        )
    if missing and os.environ.get("CI") == "true":
        pytest.exit(
            f"not compiled: {', '.join(map(str, missing))}; CI tests what ships "
            "(pip install -e . compiles them with mypyc)",
            returncode=2,
        )
