"""Golden snapshots of rendered diagnostics: what a policy author sees for each mistake.

Set UPDATE_GOLDEN=1 to rewrite the `.expected` files after an intended change.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from policyengine.cli import main

CASES = Path(__file__).parent / "cases"
TARGETS = sorted([p for p in CASES.glob("*.policy")] + [p for p in CASES.iterdir() if p.is_dir()])


@pytest.mark.parametrize("target", TARGETS, ids=lambda p: p.stem)
def test_check_output_matches_snapshot(target: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(CASES)  # file names in diagnostics are relative to the working dir
    result = CliRunner().invoke(main, ["check", target.name])
    assert result.exit_code == 1, result.output
    expected_file = target.with_name(target.stem + ".expected")
    if os.environ.get("UPDATE_GOLDEN"):
        expected_file.write_text(result.output)
    assert result.output == expected_file.read_text()


def test_every_snapshot_has_a_case() -> None:
    stems = {t.stem for t in TARGETS}
    orphans = [p.name for p in CASES.glob("*.expected") if p.stem not in stems]
    assert not orphans
