"""deploy/kubernetes: every manifest valid for Kubernetes (kubernetes-validate, strict),
the Pods locked down, and the files they carry the documented, tested ones."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from policyengine import Engine
from policyengine.cli.serve import serve

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy" / "kubernetes"
MANIFESTS = sorted(DEPLOY.glob("*.yaml"))
STALE = (
    "into its ConfigMap again: the manifests carry the documented, tested files (only the "
    "listening address differs: all of the Pod's)"
)


def documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def everything() -> list[dict[str, Any]]:
    return [doc for path in MANIFESTS for doc in documents(path)]


def by_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in everything() if d["kind"] == kind}


def containers(deployment: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in deployment["spec"]["template"]["spec"]["containers"]}


def test_there_are_manifests_for_nginx_and_envoy_beside_the_sidecar() -> None:
    assert {p.name for p in MANIFESTS} >= {
        "policies-configmap.yaml", "nginx-sidecar.yaml", "envoy-sidecar.yaml",
    }  # fmt: skip
    deployments = by_kind("Deployment")
    assert set(containers(deployments["shop-nginx"])) == {"nginx", "policyengine", "app"}
    assert set(containers(deployments["shop-envoy"])) == {"envoy", "policyengine", "app"}


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_every_manifest_validates_strictly(path: Path) -> None:
    version = kubernetes_validate.latest_version()
    for doc in documents(path):
        kubernetes_validate.validate(doc, version, strict=True)  # raises on any error


def test_every_container_is_non_root_read_only_and_sized() -> None:
    for name, deployment in by_kind("Deployment").items():
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert pod["automountServiceAccountToken"] is False
        for container in pod["containers"]:
            where = f"{name}/{container['name']}"
            security = container["securityContext"]
            assert security["runAsNonRoot"] is True and security["runAsUser"] > 0, where
            assert security["readOnlyRootFilesystem"] is True, where
            assert security["allowPrivilegeEscalation"] is False, where
            assert security["capabilities"] == {"drop": ["ALL"]}, where
            assert {"cpu", "memory"} <= set(container["resources"]["requests"]), where
            assert "memory" in container["resources"]["limits"], where


def test_the_sidecar_is_probed_and_started_with_options_that_exist() -> None:
    options = {opt for param in serve.params for opt in param.opts}
    for name, deployment in by_kind("Deployment").items():
        sidecar = containers(deployment)["policyengine"]
        assert sidecar["livenessProbe"]["httpGet"]["path"] == "/healthz", name
        assert sidecar["readinessProbe"]["httpGet"]["path"] == "/readyz", name
        assert sidecar["startupProbe"]["httpGet"]["path"] == "/readyz", name
        for arg in sidecar["args"]:
            if arg.startswith("--"):
                assert arg.split("=", 1)[0] in options, f"{name}: {arg}"
        mounts = {m["mountPath"] for m in sidecar["volumeMounts"]}
        assert "/tmp" in mounts  # bundles are unpacked there, root is read-only
    nginx_args = containers(by_kind("Deployment")["shop-nginx"])["policyengine"]["args"]
    assert "--nginx-mode" in nginx_args and "/etc/policyengine/policies" in nginx_args
    envoy_args = containers(by_kind("Deployment")["shop-envoy"])["policyengine"]["args"]
    assert any(a.startswith("--bundle=https://") for a in envoy_args)
    assert any(a.startswith("--bundle-public-key=") for a in envoy_args)


def test_the_policies_config_map_is_the_retail_example_and_compiles(tmp_path: Path) -> None:
    data = by_kind("ConfigMap")["policyengine-policies"]["data"]
    for name, text in data.items():
        assert text == (ROOT / "policies" / "retail" / name).read_text(), f"copy {name} {STALE}"
        (tmp_path / name).write_text(text)
    assert Engine.load(tmp_path).policy.route_count > 0


def test_the_gateway_configs_are_the_documented_ones() -> None:
    maps = by_kind("ConfigMap")
    nginx = maps["nginx-policyengine"]["data"]["policyengine.conf"]
    documented = (ROOT / "docs" / "gateways" / "nginx" / "policyengine.conf").read_text()
    assert nginx == documented.replace("listen 127.0.0.1:8080;", "listen 8080;"), (
        f"copy docs/gateways/nginx/policyengine.conf {STALE}"
    )
    envoy_text = maps["envoy-policyengine"]["data"]["envoy.yaml"]
    documented_envoy = (ROOT / "docs" / "gateways" / "envoy" / "envoy.yaml").read_text()
    # the documented file, listening on the Pod's addresses: copy it again when it changes
    assert envoy_text == documented_envoy.replace(
        "{address: 127.0.0.1, port_value: 8080}", "{address: 0.0.0.0, port_value: 8080}"
    ), f"copy docs/gateways/envoy/envoy.yaml {STALE}"
    envoy = yaml.safe_load(envoy_text)
    clusters = {c["name"]: c for c in envoy["static_resources"]["clusters"]}
    endpoint = clusters["policyengine"]["load_assignment"]["endpoints"][0]["lb_endpoints"][0]
    assert endpoint["endpoint"]["address"]["socket_address"] == {
        "address": "127.0.0.1", "port_value": 8181,
    }  # fmt: skip
    listener = envoy["static_resources"]["listeners"][0]["address"]["socket_address"]
    assert listener["address"] == "0.0.0.0"


def test_the_containerfile_runs_the_sidecar_as_the_manifests_user() -> None:
    text = (DEPLOY / "Containerfile").read_text()
    user = re.search(r"^USER (\d+):(\d+)$", text, re.MULTILINE)
    assert user is not None and user.group(1) != "0"
    assert 'ENTRYPOINT ["policyengine", "serve"]' in text
    for deployment in by_kind("Deployment").values():
        sidecar = containers(deployment)["policyengine"]
        assert str(sidecar["securityContext"]["runAsUser"]) == user.group(1)
