"""The CLI faces: exit codes and output of check, eval and test (INTERFACES.md)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from policyengine.cli import main

POLICY = """
policy "cli"
role viewer
schema Note { text: string len 1..10 }
route GET /ok { allow anyone }
route GET /who { allow when header["X-User"] == "ann" }
route POST /notes { allow anyone; body Note }
"""


@pytest.fixture
def policy_dir(tmp_path: Path) -> Path:
    (tmp_path / "p.policy").write_text(POLICY)
    return tmp_path


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def test_check_ok(policy_dir: Path) -> None:
    code, out = run("check", str(policy_dir))
    assert code == 0
    assert "ok: policy `cli`: 3 routes in 1 file(s)" in out


def test_check_reports_errors_with_locations(tmp_path: Path) -> None:
    (tmp_path / "bad.policy").write_text("route GET /x {\n  allow role ghost\n}\n")
    code, out = run("check", str(tmp_path))
    assert code == 1
    assert "bad.policy:2:14: error[compile/unknown-role]: unknown role `ghost`" in out
    assert "1 error" in out


def test_check_strict_fails_on_warnings(tmp_path: Path) -> None:
    (tmp_path / "w.policy").write_text("route GET /x { deny when true }\n")
    assert run("check", str(tmp_path))[0] == 0
    code, out = run("check", "--strict", str(tmp_path))
    assert code == 1 and "lint/no-allow" in out


def test_eval_json_allowed_exits_0(policy_dir: Path) -> None:
    code, out = run("eval", str(policy_dir), "GET", "/ok", "--format", "json")
    assert code == 0
    assert json.loads(out)["reason"] == "allow"


def test_eval_denied_exits_1(policy_dir: Path) -> None:
    code, out = run("eval", str(policy_dir), "GET", "/nope")
    assert code == 1
    assert json.loads(out)["reason"] == "route.unmatched"


def test_eval_headers_and_text_output(policy_dir: Path) -> None:
    code, out = run("eval", str(policy_dir), "GET", "/who", "-H", "X-User: ann", "--format", "text")
    assert code == 0
    assert out.startswith("ALLOW 200 allow")


def test_eval_body_from_file_and_errors_in_text(policy_dir: Path, tmp_path: Path) -> None:
    body = tmp_path / "body.json"
    body.write_text('{"text": ""}')
    code, out = run(
        "eval",
        str(policy_dir),
        "POST",
        "/notes",
        "--body",
        f"@{body}",
        "-H",
        "Content-Type: application/json",
        "--format",
        "text",
    )
    assert code == 1
    assert "DENY 400 input.invalid" in out
    assert "error /text:" in out


def test_eval_explain_prints_the_trace(policy_dir: Path) -> None:
    code, out = run("eval", str(policy_dir), "GET", "/ok", "--explain", "--format", "text")
    assert code == 0
    assert "trace:\n  normalize: /ok\n  match: GET /ok (p.policy:5)" in out
    code, out = run("eval", str(policy_dir), "GET", "/ok", "--explain")
    assert json.loads(out)["trace"][0] == "normalize: /ok"


@pytest.mark.parametrize(
    "args",
    [
        ["-H", "no-colon"],
        ["--body", "@/does/not/exist.json"],
        ["--format", "xml"],
    ],
)
def test_eval_usage_errors_exit_2(policy_dir: Path, args: list[str]) -> None:
    assert run("eval", str(policy_dir), "GET", "/ok", *args)[0] == 2


def test_eval_policy_errors_exit_2(tmp_path: Path) -> None:
    (tmp_path / "bad.policy").write_text("route GET /x { allow role ghost }")
    code, out = run("eval", str(tmp_path), "GET", "/x")
    assert code == 2 and "unknown role" in out


def write_tests(directory: Path, expect_status: int) -> None:
    (directory / "p_test.yaml").write_text(
        "- name: ok is public\n"
        "  request: {method: GET, path: /ok}\n"
        f"  expect: {{status: {expect_status}}}\n"
        "- name: who needs ann\n"
        "  request: {method: GET, path: /who, headers: {X-User: bob}}\n"
        "  expect: {status: 401, reason: authn.missing}\n"
    )


def test_test_command_passes(policy_dir: Path) -> None:
    write_tests(policy_dir, 200)
    code, out = run("test", str(policy_dir))
    assert code == 0
    assert "p_test.yaml .." in out
    assert "2 passed, 0 failed" in out


def test_test_command_reports_failures(policy_dir: Path) -> None:
    write_tests(policy_dir, 404)
    code, out = run("test", str(policy_dir))
    assert code == 1
    assert "p_test.yaml F." in out
    assert "FAILED" in out and "ok is public" in out and "status: expected 404, got 200" in out
    assert "1 passed, 1 failed" in out


def test_test_files_with_unknown_keys_are_rejected(policy_dir: Path) -> None:
    (policy_dir / "x_test.yaml").write_text(
        "- name: typo\n  request: {method: GET, path: /ok}\n  expcet: {status: 200}\n"
    )
    code, out = run("test", str(policy_dir))
    assert code == 2 and "unknown key(s) expcet" in out


def test_test_cases_need_an_expectation(policy_dir: Path) -> None:
    (policy_dir / "x_test.yaml").write_text(
        "- name: nothing\n  request: {method: GET, path: /ok}\n"
    )
    code, out = run("test", str(policy_dir))
    assert code == 2 and "expected a mapping" in out


def test_python_dash_m_works(policy_dir: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "policyengine", "eval", str(policy_dir), "GET", "/ok"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["allow"] is True
