"""Shared by tests/openapi: the specs and a CLI runner."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from policyengine.cli import main

SPECS = Path(__file__).parent / "specs"
PETSTORE = SPECS / "swagger-petstore-3.0.yaml"
MUSEUM = SPECS / "redocly-museum-3.1.yaml"
CLINIC = SPECS / "clinic-3.0.json"
HYDRA = SPECS / "ory-hydra-3.0.json"


def run(*args: str | Path) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


def imported(spec: Path, out: Path) -> Path:
    code, stdout, stderr = run("import", "openapi", spec, "--out", out)
    assert code == 0, stdout + stderr
    return out
