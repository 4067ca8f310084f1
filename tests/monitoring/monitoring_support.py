"""Shared by the monitoring tests: where the files are, which metrics a real sidecar exposes."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "server"))  # the sidecar helpers
from server_support import (
    ServerThread,
    forward_auth,
    make_config,
    redis_server,
    request,
    write_policy,
)

MONITORING = Path(__file__).resolve().parents[2] / "docs" / "monitoring"
METRIC = re.compile(r"\bpolicyengine_[a-z0-9_]+\b")  # recorded series have a `:`

BANNED = """\
authn api_key {
    header "X-API-Key"
    keys file "keys.yaml"
}
role user
role admin
limit tight 100 per minute by client_ip
ban guessing after 1 failures per minute by client_ip for 1m
route GET /api/orders/{id:int} {
    allow role user
    limit tight
    ban guessing
}
"""


def scrape(directory: Path, redis_url: str | None) -> str:
    """/metrics of a sidecar after one failure (which starts the ban)."""
    with ServerThread(make_config(directory, redis_url=redis_url)) as server:
        ask = forward_auth("GET", "/api/orders/1", **{"X-API-Key": "wrong"})
        assert request(server.port, "GET", "/v1/forward-auth", ask).status == 401
        return request(server.port, "GET", "/metrics").body.decode()


def sample_names(text: str) -> set[str]:
    names = set()
    for family in text_string_to_metric_families(text):
        names.update(sample.name for sample in family.samples)
        if family.type == "counter":
            names.add(family.name + "_total")
        elif family.type == "histogram":
            names.update(family.name + suffix for suffix in ("_bucket", "_sum", "_count"))
        else:
            names.add(family.name)
    return names


@pytest.fixture(scope="module")
def exposed(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    """The sample names sidecars with a limit and a ban expose: on the memory store
    (its evictions) and on Redis (the store's errors and health)."""
    workdir = tmp_path_factory.mktemp("scrape")
    directory = write_policy(workdir / "p", BANNED)
    memory = scrape(directory, None)
    assert 'policyengine_bans_started_total{ban="guessing"} 1.0' in memory
    names = sample_names(memory)
    with redis_server(workdir / "redis") as url:
        names |= sample_names(scrape(directory, url))
    return names
