"""docs/monitoring/alerts.yml: the rules pass promtool's checks and unit tests, and every
metric they read is one a real sidecar's /metrics exposes.

Under CI=true a missing promtool is a failure (CI installs Debian's `prometheus`).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator

import yaml
from ci_support import missing
from monitoring_support import METRIC, MONITORING

RECORDED = re.compile(r"\bpolicyengine:[a-z0-9_:]+\b")


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        missing(
            "promtool is not installed (Debian package `prometheus`)",
            "CI must test the alert rules",
        )
    return path


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=MONITORING, capture_output=True, text=True, timeout=120)


def test_promtool_checks_the_rules() -> None:
    result = run(promtool(), "check", "rules", "alerts.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_unit_tests_pass() -> None:
    result = run(promtool(), "test", "rules", "alerts_test.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_firing_and_a_silent_test() -> None:
    rules = yaml.safe_load((MONITORING / "alerts.yml").read_text())
    alerts = {r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
    tests = yaml.safe_load((MONITORING / "alerts_test.yml").read_text())["tests"]
    firing, silent = set(), set()
    for test in tests:
        for case in test["alert_rule_test"]:
            (firing if case["exp_alerts"] else silent).add(case["alertname"])
    assert alerts == firing == silent


def rule_expressions() -> Iterator[str]:
    rules = yaml.safe_load((MONITORING / "alerts.yml").read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            yield rule["expr"]


def test_the_rules_read_only_metrics_the_sidecar_exposes(exposed: set[str]) -> None:
    used = {name for expr in rule_expressions() for name in METRIC.findall(expr)}
    assert used and used <= exposed, sorted(used - exposed)
    rules = yaml.safe_load((MONITORING / "alerts.yml").read_text())
    recorded = {r["record"] for g in rules["groups"] for r in g["rules"] if "record" in r}
    referenced = {name for expr in rule_expressions() for name in RECORDED.findall(expr)}
    assert referenced <= recorded, sorted(referenced - recorded)
