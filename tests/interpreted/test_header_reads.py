"""`CompiledPolicy.inputs` names everything a decision reads (the decision cache keys on it).

Run against the interpreted source (tests/interpreted/conftest.py): recording reads
means replacing RequestContext's methods, which compiled callers would not see.

Every case of the corpus and of the example policies is decided while the context
records which header fields and whether the client address were read; each must be
among the policy's declared inputs. A header read that the compiler did not collect
would let a cache answer one request with another's decision.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from policyengine import Engine
from policyengine.context import RequestContext
from policyengine.testing import FixedClock, load_case_file, write_policy_dir

ROOT = Path(__file__).resolve().parents[2]
CORPUS = sorted((ROOT / "tests" / "cases").rglob("*.yaml"))
EXAMPLES = sorted((ROOT / "policies").glob("*/*_test.yaml"))


class Reads:
    def __init__(self) -> None:
        self.headers: set[str] = set()
        self.client_ip = False


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> Iterator[Reads]:
    compiled = [
        name
        for name, module in sys.modules.items()
        if name.startswith("policyengine")
        and not (getattr(module, "__file__", "") or "").endswith(".py")
    ]
    assert not compiled, f"compiled modules would not record their reads: {compiled}"
    seen = Reads()
    header = RequestContext.header
    client_ip = RequestContext.client_ip

    def recording_header(self: RequestContext, lower_name: str) -> str | None:
        seen.headers.add(lower_name)
        return header(self, lower_name)

    def recording_client_ip(self: RequestContext) -> Any:
        seen.client_ip = True
        return client_ip.fget(self)  # type: ignore[attr-defined]

    monkeypatch.setattr(RequestContext, "header", recording_header)
    monkeypatch.setattr(RequestContext, "client_ip", property(recording_client_ip))
    yield seen


def _check(engine: Engine, reads: Reads) -> None:
    inputs = engine.policy.inputs
    assert reads.headers <= set(inputs.headers), sorted(reads.headers - set(inputs.headers))
    assert inputs.client_ip or not reads.client_ip


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_corpus_reads_only_declared_inputs(path: Path, tmp_path: Path, reads: Reads) -> None:
    case_file = load_case_file(path)
    if case_file.policy is None:
        pytest.fail(f"{path}: corpus files carry their policy")
    clock = FixedClock()
    engine = Engine.load(write_policy_dir(case_file, tmp_path), clock=clock)
    for case in case_file.cases:
        clock.now += case.advance
        engine.decide(case.request)
    _check(engine, reads)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.parent.name)
def test_example_policies_read_only_declared_inputs(path: Path, reads: Reads) -> None:
    clock = FixedClock()
    engine = Engine.load(path.parent, clock=clock)
    for case in load_case_file(path).cases:
        clock.now += case.advance
        engine.decide(case.request)
    assert reads.headers, "the examples authenticate, so some header must have been read"
    _check(engine, reads)
