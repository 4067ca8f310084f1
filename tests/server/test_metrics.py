"""Metrics counted per worker, summed over workers, exposed in Prometheus text."""

from __future__ import annotations

import os
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from policyengine.server.metrics import Metrics


def samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(metrics.render().decode()):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_decisions_latency_reloads_and_errors_are_exposed() -> None:
    metrics = Metrics(limiter_source=lambda: {"checks": 3.0, "store_errors": 1.0})
    metrics.decision(("forward-auth", "GET /o", 200, "allow"), 80)
    metrics.decision(("forward-auth", "GET /o", 200, "allow"), 3000)
    metrics.decision(("envoy", "", 403, "route.unmatched"), 30)
    metrics.reload(ok=False)
    metrics.http_error("request.malformed")
    metrics.connections = 4
    got = samples(metrics)
    allow = (
        ("endpoint", "forward-auth"),
        ("reason", "allow"),
        ("route", "GET /o"),
        ("status", "200"),
    )
    assert got[("policyengine_decisions_total", allow)] == 2
    assert got[("policyengine_decision_duration_seconds_bucket", (("le", "0.0001"),))] == 2
    assert got[("policyengine_decision_duration_seconds_bucket", (("le", "+Inf"),))] == 3
    assert abs(got[("policyengine_decision_duration_seconds_sum", ())] - 0.00311) < 1e-9
    assert got[("policyengine_reloads_total", (("result", "error"),))] == 1
    assert got[("policyengine_http_errors_total", (("kind", "request.malformed"),))] == 1
    assert got[("policyengine_connections_total", ())] == 4
    assert got[("policyengine_limiter_store_errors_total", ())] == 1


def test_every_workers_published_totals_are_summed(tmp_path: Path) -> None:
    other = Metrics(tmp_path)
    other.decision(("decide", "GET /o", 200, "allow"), 10)
    other.reload(ok=True)
    other.publish()
    # another worker's file (as if from another pid)
    (tmp_path / f"worker-{os.getpid()}.json").rename(tmp_path / "worker-1.json")
    mine = Metrics(tmp_path)
    mine.decision(("decide", "GET /o", 200, "allow"), 10)
    mine.publish()  # its own file is not counted twice: the live numbers are used
    mine.decision(("decide", "GET /o", 200, "allow"), 10)
    (tmp_path / "worker-2.json").write_text("{not json")  # a worker mid-write: skipped
    got = samples(mine)
    allow = (("endpoint", "decide"), ("reason", "allow"), ("route", "GET /o"), ("status", "200"))
    assert got[("policyengine_decisions_total", allow)] == 3
    assert got[("policyengine_reloads_total", (("result", "ok"),))] == 1


def test_a_failed_reload_is_a_gauge_until_one_succeeds() -> None:
    from policyengine.server.metrics import Metrics

    metrics = Metrics()
    metrics.reload(ok=False)
    assert b"policyengine_reload_failing 1.0" in metrics.render()
    metrics.reload(ok=True)
    text = metrics.render()
    assert b"policyengine_reload_failing 0.0" in text
    assert b'policyengine_reloads_total{result="error"} 1.0' in text
