"""docs/monitoring/dashboard.json: a Grafana dashboard over the sidecar's metrics."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from monitoring_support import METRIC, MONITORING

DASHBOARD = json.loads((MONITORING / "dashboard.json").read_text())


def dashboard_expressions() -> Iterator[str]:
    def walk(node: Any) -> Iterator[str]:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("expr", "query") and isinstance(value, str):
                    yield value
                else:
                    yield from walk(value)
        elif isinstance(node, list):
            for item in node:
                yield from walk(item)

    yield from walk(DASHBOARD)


def test_the_dashboard_reads_only_metrics_the_sidecar_exposes(exposed: set[str]) -> None:
    used = {name for expr in dashboard_expressions() for name in METRIC.findall(expr)}
    assert used and used <= exposed, sorted(used - exposed)


def test_the_dashboard_picks_its_prometheus_and_jobs() -> None:
    assert DASHBOARD["schemaVersion"] >= 36
    variables = {v["name"]: v for v in DASHBOARD["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for panel in DASHBOARD["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
            for target in panel["targets"]:
                assert 'job=~"$job"' in target["expr"], target["expr"]


def test_the_dashboard_shows_what_the_issue_asks() -> None:
    exprs = "\n".join(dashboard_expressions())
    for needed in ("sum by (reason)", "sum by (route)", "histogram_quantile(0.99",
                   "policyengine_limiter_store_errors_total", "policyengine_limiter_store_down",
                   "policyengine_bans_started_total", 'reason="abuse.banned"'):  # fmt: skip
        assert needed in exprs, needed
    ids = [panel["id"] for panel in DASHBOARD["panels"]]
    assert len(ids) == len(set(ids))
