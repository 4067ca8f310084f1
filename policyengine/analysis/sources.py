"""Where a policy set to analyse comes from: a directory, or `REV:DIR` read from git.

`REV:DIR` is read with `git archive` into a temporary directory (no checkout, the work
tree is not touched). Secrets read from the environment are replaced by a placeholder:
an analysis compares the variables' names, and needs no secret to do it.
"""

from __future__ import annotations

import io
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

from policyengine.analysis.summary import PolicySummary, summarize
from policyengine.compile import compile_with_state
from policyengine.loader import load_policy_set

_PLACEHOLDER = "policyengine-analysis-placeholder-not-a-secret-0123456789abcdef0123456789"
GIT_TIMEOUT_S = 60


class SourceError(Exception):
    """A policy set that cannot be read (an unknown revision, a missing directory)."""


class PlaceholderEnviron(Mapping[str, str]):
    """Every variable set, to the same value that is no secret (long enough for HS512)."""

    def __getitem__(self, key: str) -> str:
        return _PLACEHOLDER

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def summarize_source(spec: str) -> PolicySummary:
    """The summary of `DIR` or `REV:DIR`; raises SourceError, or PolicyError."""
    if Path(spec).exists() or ":" not in spec:
        return summarize_dir(Path(spec))
    rev, _, directory = spec.partition(":")
    with tempfile.TemporaryDirectory(prefix="policyengine-diff-") as tmp:
        _extract(rev, directory or ".", Path(tmp))
        return summarize_dir(Path(tmp) / (directory or "."))


def summarize_dir(directory: Path) -> PolicySummary:
    if not directory.exists():
        raise SourceError(f"`{directory}` does not exist")
    compiled, state = compile_with_state(
        load_policy_set(directory), environ=PlaceholderEnviron(), lints=False
    )
    return summarize(compiled, state)


def _extract(rev: str, directory: str, into: Path) -> None:
    if rev.startswith("-"):
        raise SourceError(f"`{rev}` is not a git revision")
    try:
        done = subprocess.run(
            ["git", "archive", "--format=tar", rev, "--", directory],
            capture_output=True,
            timeout=GIT_TIMEOUT_S,
            check=False,
        )
    except FileNotFoundError:
        raise SourceError("`git` is not installed; it reads `REV:DIR`") from None
    except subprocess.TimeoutExpired:
        raise SourceError(f"`git archive {rev}` took longer than {GIT_TIMEOUT_S}s") from None
    if done.returncode != 0:
        message = done.stderr.decode(errors="replace").strip().splitlines()
        raise SourceError(
            f"cannot read `{directory}` at `{rev}`: " + (message[0] if message else "git failed")
        )
    with tarfile.open(fileobj=io.BytesIO(done.stdout)) as archive:
        archive.extractall(into, filter="data")  # no absolute paths, no links out
