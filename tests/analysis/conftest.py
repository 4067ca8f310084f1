"""Fixtures of tests/analysis: policy sets written into temporary directories."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# --import-mode=importlib leaves sys.path alone; the shared helpers sit next to this file.
sys.path.insert(0, str(Path(__file__).parent))

from analysis_support import BASE, KEYS, MakeSet


@pytest.fixture
def make_set(tmp_path: Path) -> MakeSet:
    """make_set(name, text, files): a policy set directory `name` below tmp_path, its
    text in shop.policy, keys.yaml unless `files` has one."""

    def make(name: str, text: str = BASE, files: dict[str, str] | None = None) -> Path:
        directory = tmp_path / name
        directory.mkdir()
        (directory / "shop.policy").write_text(text)
        for file_name, content in {"keys.yaml": KEYS, **(files or {})}.items():
            (directory / file_name).write_text(content)
        return directory

    return make
