"""The Prometheus text exposition of a worker's totals, written by prometheus-client.

Apart from metrics.py, whose counting runs on every request (compiled with mypyc):
this runs per scrape, and its Collector subclass stays interpreted.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from policyengine.server.metrics import LATENCY_BOUNDS_US, LIMITER_SERIES, Metrics


def render(totals: Metrics) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Exposition(totals))
    return generate_latest(registry)


class _Exposition(Collector):
    def __init__(self, totals: Metrics) -> None:
        self.totals = totals

    def collect(self) -> Iterator[Metric]:
        totals = self.totals
        decisions = CounterMetricFamily(
            "policyengine_decisions",
            "Decisions by endpoint, route, status and reason",
            labels=("endpoint", "route", "status", "reason"),
        )
        for endpoint, route, status, reason in sorted(totals.decisions):
            count = totals.decisions[endpoint, route, status, reason].count
            decisions.add_metric((endpoint, route, str(status), reason), count)
        yield decisions
        yield _latency(totals)
        reloads = CounterMetricFamily(
            "policyengine_reloads", "Policy reloads by result", labels=("result",)
        )
        for result in ("ok", "error"):
            reloads.add_metric((result,), totals.reloads.get(result, 0))
        yield reloads
        if totals.revisions:  # which policy revision, on how many workers
            revisions = GaugeMetricFamily(
                "policyengine_policy_revision",
                "Workers serving each policy revision (a bundle's, or a directory's hash)",
                labels=("revision",),
            )
            for revision, workers in sorted(totals.revisions.items()):
                revisions.add_metric((revision,), workers)
            yield revisions
        yield GaugeMetricFamily(
            "policyengine_reload_failing",
            "Workers whose last policy reload failed (they serve the policy before it)",
            value=totals.reload_failing,
        )
        bans = CounterMetricFamily("policyengine_bans_started", "Bans started, by ban",
                                   labels=("ban",))  # fmt: skip
        for name, count in sorted(totals.bans.items()):
            bans.add_metric((name,), count)
        yield bans
        errors = CounterMetricFamily(
            "policyengine_http_errors",
            "Requests refused before any decision, by kind",
            labels=("kind",),
        )
        for kind, count in sorted(totals.http_errors.items()):
            errors.add_metric((kind,), count)
        yield errors
        yield CounterMetricFamily(
            "policyengine_connections", "Connections accepted", value=totals.connections
        )
        yield CounterMetricFamily(
            "policyengine_decisions_reused",
            "Decisions answered from the decision cache (also counted in decisions)",
            value=totals.reused,
        )
        for name, kind, help_text in LIMITER_SERIES:
            if name in totals.limiter:
                family = CounterMetricFamily if kind == "counter" else GaugeMetricFamily
                yield family(f"policyengine_limiter_{name}", help_text, value=totals.limiter[name])


def _latency(totals: Metrics) -> HistogramMetricFamily:
    cumulative, running = [], 0
    for bound, count in zip(LATENCY_BOUNDS_US, totals.latency_buckets, strict=False):
        running += count
        cumulative.append((repr(bound / 1e6), running))
    running += totals.latency_buckets[-1]
    cumulative.append(("+Inf", running))
    return HistogramMetricFamily(
        "policyengine_decision_duration_seconds",
        "Time from a complete request to its decision's response",
        buckets=cumulative,
        sum_value=totals.latency_sum_us / 1e6,
    )
