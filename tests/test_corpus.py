"""The data-driven corpus (tests/cases/<topic>/*.yaml) through every face of the engine.

Each case runs through the Python API and, unless it uses the `identity:` shortcut
(which only trusted in-process callers have), through `policyengine eval`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from policyengine import Engine
from policyengine.cli import main
from policyengine.decision import Decision, InputError, Reason
from policyengine.testing import (
    Case,
    CaseFile,
    FixedClock,
    compare,
    load_case_file,
    write_policy_dir,
)

CORPUS = Path(__file__).parent / "cases"
FILES = sorted(CORPUS.rglob("*.yaml"))


def _load(path: Path) -> CaseFile:
    return load_case_file(path)


@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_corpus_through_python_api(path: Path, tmp_path: Path) -> None:
    case_file = _load(path)
    clock = FixedClock()
    engine = Engine.load(write_policy_dir(case_file, tmp_path), clock=clock)
    failures = []
    for case in case_file.cases:
        clock.now += case.advance
        problems = compare(case.expect, engine.decide(case.request))
        failures.extend(f"{case.name}: {p}" for p in problems)
    assert not failures, "\n".join(failures)


def _eval_via_cli(policy_dir: Path, case: Case) -> Decision:
    request = case.request
    args = ["eval", str(policy_dir), request.method, request.path, "--format", "json"]
    for name, value in request.headers.items():
        args += ["-H", f"{name}: {value}"]
    if request.body is not None:
        body = request.body if isinstance(request.body, str) else json.dumps(request.body)
        args += ["--body", body]
    if request.client_ip:
        args += ["--client-ip", request.client_ip]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == (0 if json.loads(result.output)["allow"] else 1), result.output
    data = json.loads(result.output)
    return Decision(
        data["allow"],
        data["status"],
        Reason(data["reason"]),
        data["message"],
        data["route"],
        data["rule"],
        data["subject"],
        tuple(data["roles"]),
        data["upstream_headers"],
        data["response_headers"],
        tuple(InputError(e["pointer"], e["message"]) for e in data["errors"]),
    )


STATELESS = [p for p in FILES if not any(c.advance for c in _load(p).cases)]


@pytest.mark.parametrize("path", STATELESS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_corpus_through_cli(path: Path, tmp_path: Path) -> None:
    case_file = _load(path)
    policy_dir = write_policy_dir(case_file, tmp_path)
    failures = []
    for case in case_file.cases:
        if case.request.identity is not None:
            continue
        problems = compare(case.expect, _eval_via_cli(policy_dir, case))
        failures.extend(f"{case.name}: {p}" for p in problems)
    assert not failures, "\n".join(failures)


def test_corpus_is_not_empty() -> None:
    assert len(FILES) >= 5
    assert sum(len(_load(p).cases) for p in FILES) >= 60
