"""docs/gateways/istio.yaml agrees with itself and with the sidecar's gRPC profile.

No cluster here: the documents are read as Istio would read them, the provider the
AuthorizationPolicy names must exist, point at the ServiceEntry, and ask for what the
sidecar needs (the body as bytes, no fail-open) on the port envoy-grpc.yaml uses.
"""

from __future__ import annotations

from typing import Any

import yaml
from server_support import GATEWAY_DOCS

DOCUMENTS: list[dict[str, Any]] = list(
    yaml.safe_load_all((GATEWAY_DOCS / "istio.yaml").read_text())
)


def kind(name: str) -> dict[str, Any]:
    (document,) = [d for d in DOCUMENTS if d and d["kind"] == name]
    return document


def test_the_custom_action_names_a_grpc_provider_of_the_mesh() -> None:
    policy = kind("AuthorizationPolicy")["spec"]
    assert policy["action"] == "CUSTOM" and policy["rules"] == [{}]
    providers = kind("IstioOperator")["spec"]["meshConfig"]["extensionProviders"]
    (provider,) = [p for p in providers if p["name"] == policy["provider"]["name"]]
    grpc = provider["envoyExtAuthzGrpc"]
    assert grpc["failOpen"] is False
    body = grpc["includeRequestBodyInCheck"]
    assert body["packAsBytes"] is True and body["allowPartialMessage"] is False


def test_the_provider_reaches_the_sidecars_grpc_port() -> None:
    grpc = kind("IstioOperator")["spec"]["meshConfig"]["extensionProviders"][0]["envoyExtAuthzGrpc"]
    entry = kind("ServiceEntry")["spec"]
    assert grpc["service"] in entry["hosts"] and entry["endpoints"] == [{"address": "127.0.0.1"}]
    assert [(p["number"], p["protocol"]) for p in entry["ports"]] == [(grpc["port"], "GRPC")]
    envoy = (GATEWAY_DOCS / "envoy" / "envoy-grpc.yaml").read_text()
    assert f"port_value: {grpc['port']}}}" in envoy
    assert f"--grpc-port {grpc['port']}" in (GATEWAY_DOCS / "istio.yaml").read_text()
