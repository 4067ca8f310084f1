"""Prometheus metrics, counted in plain dicts on the hot path and formatted on scrape.

prometheus-client's own counters cost about 1.5 µs per request (label lookup,
lock, histogram); a dict increment costs a tenth of that. So each worker counts
locally and a custom collector hands the totals to prometheus-client, which
writes the exposition format. With several workers each one also writes its
totals to a shared directory once a second, and whichever worker is scraped adds
up all of them (the other workers' numbers are at most a second old).
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

# decision latency buckets, in microseconds (the exposition is in seconds)
LATENCY_BOUNDS_US = (50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 100_000, 1_000_000)
DecisionKey = tuple[str, str, int, str]  # endpoint, route, status, reason
# what a limiter's stats() may report, and how each is exposed
LIMITER_SERIES = (
    ("checks", "counter", "Rate-limit checks"),
    ("refused", "counter", "Requests refused by a rate limit"),
    ("store_errors", "counter", "Rate-limit store round trips that failed"),
    ("store_down", "gauge", "Workers that currently cannot reach the rate-limit store"),
    ("evictions", "counter", "In-memory rate-limit counters forgotten early for room"),
)


def limiter_stats(limiter: object) -> Callable[[], Mapping[str, float]]:
    """A reader of the limiter's own counters (both stores keep them), for the scrape."""
    names = {name for name, _, _ in LIMITER_SERIES}

    def read() -> Mapping[str, float]:
        method = getattr(limiter, "stats", None)
        stats = method() if callable(method) else None
        if stats is None or not dataclasses.is_dataclass(stats) or isinstance(stats, type):
            return {}
        fields = dataclasses.asdict(stats)
        return {name: float(value) for name, value in fields.items() if name in names}

    return read


class Series:
    """One decisions counter. A decision the decision cache answers holds its series
    and counts on it directly: no key to build, unbox and hash per request (compiled,
    a tuple-typed key is a C struct boxed anew for each dict operation)."""

    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0


class Metrics:
    __slots__ = (
        "bans",
        "connections",
        "decisions",
        "directory",
        "http_errors",
        "latency_buckets",
        "latency_sum_us",
        "limiter",
        "limiter_source",
        "reload_failing",
        "reloads",
        "reused",
        "revision",
        "revisions",
    )

    def __init__(
        self,
        directory: Path | None = None,
        limiter_source: Callable[[], Mapping[str, float]] | None = None,
    ) -> None:
        self.directory = directory  # shared by the workers of one `serve`, or None
        self.limiter_source = limiter_source
        self.limiter: dict[str, float] = {}  # summed limiter stats, in totals only
        self.connections = 0  # accepted: with keep-alive, far fewer than requests
        self.reused = 0  # decisions answered from the decision cache
        self.decisions: dict[DecisionKey, Series] = {}
        self.latency_buckets = [0] * (len(LATENCY_BOUNDS_US) + 1)
        self.latency_sum_us = 0
        self.reloads: dict[str, int] = {}
        self.reload_failing = 0  # 1 while the last reload failed (summed: workers)
        self.http_errors: dict[str, int] = {}
        self.revision: str | None = None  # the bundle revision in service here
        self.revisions: dict[str, int] = {}  # in totals: workers serving each revision
        self.bans: dict[str, int] = {}  # bans started, by name

    def series(self, key: DecisionKey) -> Series:
        series = self.decisions.get(key)
        if series is None:
            series = self.decisions[key] = Series()
        return series

    def decision(self, key: DecisionKey, latency_us: int) -> None:
        self.count(self.series(key), latency_us)

    def count(self, series: Series, latency_us: int) -> None:
        series.count += 1
        bucket = 0  # the first bound >= latency_us: compiled, a loop that stops at once
        for bound in LATENCY_BOUNDS_US:  # beats a call to bisect on 11 bounds
            if latency_us <= bound:
                break
            bucket += 1
        self.latency_buckets[bucket] += 1
        self.latency_sum_us += latency_us

    def reload(self, ok: bool) -> None:
        result = "ok" if ok else "error"
        self.reloads[result] = self.reloads.get(result, 0) + 1
        self.reload_failing = 0 if ok else 1

    def ban_started(self, name: str) -> None:
        self.bans[name] = self.bans.get(name, 0) + 1

    def http_error(self, kind: str) -> None:
        self.http_errors[kind] = self.http_errors.get(kind, 0) + 1

    # -- sharing between workers -------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        return {
            "decisions": [[*key, series.count] for key, series in self.decisions.items()],
            "latency_buckets": self.latency_buckets,
            "latency_sum_us": self.latency_sum_us,
            "reloads": self.reloads,
            "reload_failing": self.reload_failing,
            "bans": self.bans,
            "http_errors": self.http_errors,
            "connections": self.connections,
            "reused": self.reused,
            "revision": self.revision,
            "limiter": dict(self.limiter_source()) if self.limiter_source else self.limiter,
        }

    def publish(self) -> None:
        """Write this worker's totals where the other workers can read them."""
        if self.directory is None:
            return
        path = self.directory / f"worker-{os.getpid()}.json"
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(self.snapshot()), encoding="utf-8")
        temporary.replace(path)  # atomic: a reader sees the old file or the new one

    def totals(self) -> Metrics:
        """This worker's counts plus every other worker's last published ones."""
        total = Metrics()
        total.add(self.snapshot())
        if self.directory is not None:
            own = f"worker-{os.getpid()}.json"
            for path in sorted(self.directory.glob("worker-*.json")):
                if path.name != own:
                    total.add(_read_snapshot(path))
        return total

    def add(self, snapshot: dict[str, Any]) -> None:
        for *key, count in snapshot.get("decisions", []):
            endpoint, route, status, reason = key
            decision_key = (str(endpoint), str(route), int(status), str(reason))
            self.series(decision_key).count += int(count)
        for index, count in enumerate(snapshot.get("latency_buckets", [])):
            if index < len(self.latency_buckets):
                self.latency_buckets[index] += int(count)
        self.latency_sum_us += int(snapshot.get("latency_sum_us", 0))
        self.connections += int(snapshot.get("connections", 0))
        self.reused += int(snapshot.get("reused", 0))
        self.reload_failing += int(snapshot.get("reload_failing", 0))
        tables = (("reloads", self.reloads), ("http_errors", self.http_errors), ("bans", self.bans))
        for table, counts in tables:
            for name, count in snapshot.get(table, {}).items():
                counts[name] = counts.get(name, 0) + int(count)
        revision = snapshot.get("revision")
        if isinstance(revision, str):
            self.revisions[revision] = self.revisions.get(revision, 0) + 1
        for name, value in snapshot.get("limiter", {}).items():
            self.limiter[name] = self.limiter.get(name, 0.0) + float(value)

    def render(self) -> bytes:
        """The Prometheus text exposition of the totals."""
        from policyengine.server.exposition import render  # per scrape, not per request

        return render(self.totals())


def _read_snapshot(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}  # a worker that is starting or gone: its numbers come back next second
    return data if isinstance(data, dict) else {}
