from __future__ import annotations

import sys
from pathlib import Path

import pytest

# --import-mode=importlib leaves sys.path alone; the shared helpers sit next to this file.
sys.path.insert(0, str(Path(__file__).parent))

from openapi_helpers import CLINIC, PETSTORE, imported


@pytest.fixture
def petstore(tmp_path: Path) -> Path:
    return imported(PETSTORE, tmp_path / "petstore")


@pytest.fixture
def clinic(tmp_path: Path) -> Path:
    return imported(CLINIC, tmp_path / "clinic")
