"""`policyengine test DIR --coverage`: rules no case exercised, routes no case reached."""

from __future__ import annotations

import json
from pathlib import Path

from analysis_support import MakeSet, run

POLICY = """policy "cov"
route GET /open { allow anyone }
route GET /admin {
    deny when header["X-Env"] == "prod"
    allow when header["X-Token"] == "t"
}
route POST /notes {
    allow anyone
    query { page?: int 1.. }
}
route GET /never { allow anyone }
"""

CASES = """
- name: open is open
  request: {method: GET, path: /open}
  expect: {status: 200}
- name: admin with the token
  request: {method: GET, path: /admin, headers: {X-Token: t}}
  expect: {status: 200, rule: "shop.policy:5"}
- name: admin without it
  request: {method: GET, path: /admin}
  expect: {status: 401}
"""


def test_lists_the_rules_and_routes_no_case_exercised(make_set: MakeSet, tmp_path: Path) -> None:
    directory = make_set("cov", POLICY, {"cov_test.yaml": CASES})
    report = tmp_path / "coverage.json"
    code, out = run("test", directory, "--coverage", "--coverage-json", report)
    assert code == 0, out
    assert f"coverage {directory}: 2/6 rules, 2/4 routes (40.0%)" in out
    assert '  not exercised: shop.policy:4:5  deny when header["X-Env"] == "prod"' in out
    assert "  not exercised: shop.policy:8:5  allow anyone" in out
    assert "  not exercised: shop.policy:9:5  query { page?: int 1.. }" in out
    assert "  not exercised: shop.policy:11:20  allow anyone" in out
    assert "  not reached:   shop.policy:7  POST /notes" in out
    assert "  not reached:   shop.policy:11  GET /never" in out
    assert "shop.policy:2:" not in out and "shop.policy:5:" not in out
    (measured,) = json.loads(report.read_text())["sets"]
    assert (measured["rules"], measured["routes"]) == (6, 4)
    assert [r["site"] for r in measured["not_exercised"]] == [
        "shop.policy:4:5", "shop.policy:8:5", "shop.policy:9:5", "shop.policy:11:20",
    ]  # fmt: skip
    assert [r["route"] for r in measured["not_reached"]] == ["POST /notes", "GET /never"]


MORE_CASES = """
- name: a note with a bad page
  request: {method: POST, path: "/notes?page=0"}
  expect: {status: 400}
- name: a deny that decides
  request: {method: GET, path: /admin, headers: {X-Env: prod, X-Token: t}}
  expect: {status: 403, rule: "shop.policy:4"}
"""


def test_a_check_rule_counts_once_a_case_gets_past_the_route_rules(
    make_set: MakeSet,
) -> None:
    more = CASES + MORE_CASES
    directory = make_set("cov", POLICY, {"cov_test.yaml": more})
    code, out = run("test", directory, "--coverage")
    assert code == 0, out
    assert f"coverage {directory}: 5/6 rules, 3/4 routes" in out
    assert out.count("not exercised") == 1  # GET /never's rule


def test_the_example_policies_and_failing_cases_keep_their_exit_code(make_set: MakeSet) -> None:
    retail = Path(__file__).resolve().parents[2] / "policies" / "retail"
    code, out = run("test", retail, "--coverage")
    assert code == 0
    assert "rules" in out.splitlines()[-1]
    failing = CASES.replace("expect: {status: 401}", "expect: {status: 200}")
    code, out = run("test", make_set("cov", POLICY, {"cov_test.yaml": failing}), "--coverage")
    assert code == 1
    assert "not reached" in out
