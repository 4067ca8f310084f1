from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# --import-mode=importlib leaves sys.path alone; the shared helpers sit next to this file.
sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "server"))  # its socket helpers, shared

from security_support import (
    HS_SECRET,
    SECRET_ENV,
    Credentials,
    running_server,
    write_corpus_policy,
)

from policyengine import Engine


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Credentials]:
    directory = tmp_path_factory.mktemp("corpus")
    return directory, write_corpus_policy(directory)


@pytest.fixture(scope="session")
def credentials(corpus: tuple[Path, Credentials]) -> Credentials:
    return corpus[1]


@pytest.fixture
def engine(corpus: tuple[Path, Credentials], monkeypatch: pytest.MonkeyPatch) -> Engine:
    """A fresh engine per test: rate-limit counts never leak between tests."""
    monkeypatch.setenv(SECRET_ENV, HS_SECRET)
    return Engine.load(corpus[0])


@pytest.fixture(scope="session")
def server_port(
    corpus: tuple[Path, Credentials], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[int]:
    """One `policyengine serve` for the whole session (cases never share a limit key)."""
    log = tmp_path_factory.mktemp("server") / "stderr.log"
    with running_server(corpus[0], log) as port:
        yield port
