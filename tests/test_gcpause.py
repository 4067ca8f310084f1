"""The collector is held off while a policy loads, and always handed back."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest

from policyengine import ast, loader
from policyengine import compile as compile_package
from policyengine.compile import PASSES, Pass, compile_policy_set
from policyengine.compile.state import CompileState
from policyengine.errors import PolicyError
from policyengine.gcpause import collector_paused
from policyengine.loader import load_policy_set, parse_text
from policyengine.source import Source
from policyengine.syntax import parse_source

ROUTES = "\n".join(f"route GET /r{i}/{{id:int}} {{ allow anyone }}" for i in range(300))


@pytest.fixture(autouse=True)
def collector_back_on() -> Iterator[None]:
    assert gc.isenabled()
    yield
    gc.enable()


def test_parsing_and_every_pass_run_with_the_collector_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    enabled: list[bool] = []

    def parse_spy(source: Source, path: str = "") -> ast.PolicyFile:
        enabled.append(gc.isenabled())
        return parse_source(source, path)

    def pass_spy(state: CompileState) -> None:
        enabled.append(gc.isenabled())

    monkeypatch.setattr(loader, "parse_source", parse_spy)
    monkeypatch.setattr(compile_package, "PASSES", (*PASSES, Pass("spy", pass_spy)))
    (tmp_path / "a.policy").write_text(ROUTES)
    (tmp_path / "b.policy").write_text("route GET /b { allow anyone }")
    compiled = compile_policy_set(load_policy_set(tmp_path))
    compile_policy_set(parse_text(ROUTES))
    assert compiled.route_count == 301
    assert enabled == [False] * 5
    assert gc.isenabled()


def test_the_collector_is_back_after_a_policy_error() -> None:
    with pytest.raises(PolicyError):
        compile_policy_set(parse_text("route GET /a { allow role nobody }"))
    with pytest.raises(PolicyError):
        parse_text("route GET /a {")
    assert gc.isenabled()


def test_a_collector_turned_off_stays_off() -> None:
    gc.disable()
    with collector_paused():
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert not gc.isenabled()


def test_a_pause_ends_with_its_block_error_or_not() -> None:
    with pytest.raises(RuntimeError), collector_paused():
        assert not gc.isenabled()
        raise RuntimeError("boom")
    assert gc.isenabled()
