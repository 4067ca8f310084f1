"""The wheel stands on its own: built from the repo, installed in a fresh venv
(dependencies from PyPI, no system site-packages), it carries the grammar and
its CLI checks the example policies.

Everything is built and installed under pytest's tmp dir; nothing is left in
the repo. Needs network access to PyPI (hatchling and the dependencies).
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
GRAMMAR = REPO / "grammar" / "policy.lark"
RETAIL = REPO / "policies" / "retail"
STEP_TIMEOUT = 300  # seconds; a hung download must not hang the suite


@dataclass(frozen=True, slots=True)
class Installed:
    wheel: Path
    venv: Path
    workdir: Path  # outside the repo, so `import policyengine` cannot find the source tree

    @property
    def bin(self) -> Path:
        return self.venv / ("Scripts" if os.name == "nt" else "bin")

    @property
    def python(self) -> Path:
        return self.bin / "python"


def _clean_env() -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP"}
    }
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["PIP_NO_INPUT"] = "1"
    return env


def _run(args: list[str | Path], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        env=_clean_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=STEP_TIMEOUT,
        check=False,
    )


def _must(proc: subprocess.CompletedProcess[str], what: str) -> str:
    if proc.returncode != 0:
        pytest.fail(
            f"{what} failed with exit {proc.returncode}\n"
            f"--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}",
            pytrace=False,
        )
    return proc.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    tmp = tmp_path_factory.mktemp("packaging")
    dist = tmp / "dist"
    _must(
        _run([sys.executable, "-m", "build", "--wheel", "--outdir", dist, REPO], cwd=tmp),
        "python -m build --wheel",
    )
    wheels = sorted(dist.glob("policyengine-*.whl"))
    assert len(wheels) == 1, f"expected one wheel in {dist}, found {wheels}"

    venv = tmp / "venv"
    _must(_run([sys.executable, "-m", "venv", venv], cwd=tmp), "python -m venv")
    result = Installed(wheel=wheels[0], venv=venv, workdir=tmp)
    _must(
        _run([result.python, "-m", "pip", "install", "--quiet", wheels[0]], cwd=tmp),
        "pip install <wheel>",
    )
    return result


def test_wheel_ships_grammar_and_typing_marker(installed: Installed) -> None:
    with zipfile.ZipFile(installed.wheel) as whl:
        names = set(whl.namelist())
        assert "policyengine/_grammar/policy.lark" in names
        assert "policyengine/py.typed" in names
        assert whl.read("policyengine/_grammar/policy.lark") == GRAMMAR.read_bytes()
        entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        assert "policyengine = policyengine.cli:main" in whl.read(entry_points).decode()
    # only the package goes into the wheel: no tests, policies or bench; beside it, the
    # C library its compiled modules share (mypyc), which they import as a top-level module
    top_level = {n.split("/", 1)[0] for n in names}
    assert {t.split(".", 1)[0] for t in top_level if not t.endswith(".dist-info")} == {
        "policyengine",
        "policyengine__mypyc",
    }
    compiled = {n.split(".", 1)[0] for n in names if n.endswith(".so")}
    assert {"policyengine/engine", "policyengine/tree", "policyengine/paths"} <= compiled


def test_grammar_is_a_package_resource_in_fresh_venv(installed: Installed) -> None:
    code = (
        "import importlib.resources as r, policyengine\n"
        "p = r.files('policyengine') / '_grammar' / 'policy.lark'\n"
        "assert p.is_file()\n"
        "print(policyengine.__file__)\n"
        "print(len(p.read_text()))\n"
    )
    out = _must(_run([installed.python, "-c", code], cwd=installed.workdir), "python -c")
    module_file, length = out.split()
    # imported from the venv, not from the repo's source tree
    assert Path(module_file).resolve().is_relative_to(installed.venv.resolve())
    assert int(length) == len(GRAMMAR.read_text())


@pytest.mark.parametrize("launcher", ["script", "module"])
def test_cli_checks_retail_example_in_fresh_venv(installed: Installed, launcher: str) -> None:
    prefix: list[str | Path] = (
        [installed.bin / "policyengine"]
        if launcher == "script"
        else [installed.python, "-m", "policyengine"]
    )
    proc = _run([*prefix, "check", RETAIL], cwd=installed.workdir)
    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"


def test_grpc_port_without_the_grpc_extra_names_it(installed: Installed) -> None:
    # the wheel alone has no grpcio: everything else works, --grpc-port says what to install
    missing = _run([installed.python, "-c", "import grpc"], cwd=installed.workdir)
    assert missing.returncode != 0
    proc = _run(
        [installed.bin / "policyengine", "serve", RETAIL, "--port", "0", "--grpc-port", "0"],
        cwd=installed.workdir,
    )
    assert proc.returncode == 2
    assert "--grpc-port needs the `grpc` extra" in proc.stderr
    assert "pip install 'policyengine[grpc]'" in proc.stderr
