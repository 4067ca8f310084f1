"""`policyengine coverage DIR --openapi SPEC`: operations without a route fail the run;
routes no operation reaches are listed."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from openapi_helpers import PETSTORE, run


def _drop_route(policy: Path, header: str) -> None:
    text = policy.read_text()
    start = text.index(header)
    end = text.index("}\n", start) + 2
    policy.write_text(text[:start] + text[end:])


def test_a_missing_operation_fails_with_its_name(petstore: Path) -> None:
    _drop_route(petstore / "api.policy", "route DELETE /pet/{petId:int} {")
    code, stdout, _ = run("coverage", petstore, "--openapi", PETSTORE, "--format", "json")
    assert code == 1
    assert json.loads(stdout) == {
        "operations": 19,
        "uncovered": ["DELETE /pet/{petId}"],
        "unmatched_routes": [],
    }
    code, stdout, _ = run("coverage", petstore, "--openapi", PETSTORE)
    assert code == 1
    assert "18 of 19 operations reach a route" in stdout
    assert "uncovered: DELETE /pet/{petId}" in stdout


def test_routes_without_an_operation_are_listed_but_do_not_fail(petstore: Path) -> None:
    with (petstore / "api.policy").open("a") as f:
        f.write("route GET /internal/metrics { allow anyone }\nroute ANY /legacy/** { }\n")
    code, stdout, _ = run("coverage", petstore, "--openapi", PETSTORE, "--format", "json")
    assert code == 0
    report = json.loads(stdout)
    assert report["uncovered"] == []
    assert report["unmatched_routes"] == ["ANY /legacy/**", "GET /internal/metrics"]


def test_matching_follows_the_engine(tmp_path: Path) -> None:
    """Hand-written routes cover operations the way requests reach them: `**`, ANY, HEAD
    falling back to GET, typed segments (a string id does not reach `{id:int}`)."""
    (tmp_path / "p.policy").write_text(
        "route GET /pet/{petId:int} { allow anyone }\n"
        "route ANY /store/** { allow anyone }\n"
        "route GET /user/{username}, PUT /user/{username}, DELETE /user/{username} {\n"
        "    allow anyone\n}\n"
    )
    code, stdout, _ = run("coverage", tmp_path, "--openapi", PETSTORE, "--format", "json")
    assert code == 1
    report = json.loads(stdout)
    assert "GET /pet/{petId}" not in report["uncovered"]
    assert not any(
        op.startswith(("GET /store", "POST /store", "DELETE /store")) for op in report["uncovered"]
    )
    assert "GET /user/login" not in report["uncovered"]  # reaches /user/{username}
    assert "POST /pet/{petId}" in report["uncovered"]
    assert "PUT /pet" in report["uncovered"]
    assert report["unmatched_routes"] == []


def test_a_broken_policy_or_spec_is_exit_2(petstore: Path, tmp_path: Path) -> None:
    (petstore / "api.policy").write_text("route GET /a { allow role nobody }\n")
    code, _, stderr = run("coverage", petstore, "--openapi", PETSTORE)
    assert code == 2
    assert "compile/unknown-role" in stderr
    spec = tmp_path / "bad.yaml"
    spec.write_text("openapi: 3.0.0\n")
    code, _, stderr = run("coverage", petstore, "--openapi", spec)
    assert code == 2
    assert "error[openapi/invalid]" in stderr
