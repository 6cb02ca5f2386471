"""Properties every render must keep, as tables over fleets and targets."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from dagfleet.render import K8sOptions, render_ecs, render_k8s
from dagfleet.render import common as c
from dagfleet.render.ecs_parts import prefix_policy, s3_prefixes
from dagfleet.render.write import texts
from tests.unit.render.fleets import (
    FLEETS,
    SECRET_ENV,
    SECRET_VALUE,
    default_fleet,
    render_all,
    three_repo_fleet,
)

pytestmark = pytest.mark.unit
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def k8s_docs(fleet_name: str, **kw: Any) -> list[dict[str, Any]]:
    out = []
    for path, text in texts(render_k8s(FLEETS[fleet_name](), K8sOptions(**kw))).items():
        if path.startswith("manifests/") and not path.endswith("kustomization.yaml"):
            out += [d for d in yaml.safe_load_all(text) if d]
    return out


@pytest.mark.parametrize("fleet", list(FLEETS))
def test_every_kubernetes_name_is_a_dns_label_of_at_most_63(fleet: str) -> None:
    for doc in k8s_docs(fleet):
        name = doc["metadata"]["name"]
        assert len(name) <= 63 and DNS_LABEL.match(name), name
        ns = doc["metadata"].get("namespace", "")
        assert len(ns) <= 63 and (not ns or DNS_LABEL.match(ns)), ns


@pytest.mark.parametrize(
    ("parts", "expected"),
    [
        (("datpipe", "A"), "datpipe-a"),
        (("medallion-B",), "medallion-b"),
        (("x" * 40, "y" * 40), None),
    ],
)
def test_k8s_name(parts: tuple[str, ...], expected: str | None) -> None:
    name = c.k8s_name(*parts)
    assert len(name) <= 63 and DNS_LABEL.match(name)
    if expected:
        assert name == expected
    assert c.k8s_name(*parts) == name  # stable


@pytest.mark.parametrize("fleet", list(FLEETS))
def test_debug_port_only_in_debug_environments(fleet: str) -> None:
    spec = FLEETS[fleet]()
    debug_ns = {c.namespace(spec, e.name) for e in spec.spec.environments if e.debug}
    seen = set()
    for doc in k8s_docs(fleet):
        if doc["kind"] != "Deployment":
            continue
        container = doc["spec"]["template"]["spec"]["containers"][0]
        ports = {p["containerPort"] for p in container["ports"]}
        is_playground = doc["metadata"]["name"].startswith("playground-")
        wanted = doc["metadata"]["namespace"] in debug_ns and not is_playground
        assert (c.DEBUG_PORT in ports) == wanted, doc["metadata"]["name"]
        seen.add(wanted)
    assert seen == {True, False}


def test_code_server_port_probe_and_resources() -> None:
    docs = [d for d in k8s_docs("analytics") if d["kind"] == "Deployment"]
    sales = next(d for d in docs if d["metadata"]["name"] == "sales-dev")
    container = sales["spec"]["template"]["spec"]["containers"][0]
    assert container["ports"][0]["containerPort"] == 4000
    assert container["readinessProbe"]["exec"]["command"][:3] == [
        "dagster",
        "api",
        "grpc-health-check",
    ]
    # seed 004: cpu 512 = half a vCPU, memory 1024 MiB.
    assert container["resources"]["requests"] == {"cpu": "500m", "memory": "1024Mi"}
    sync = sales["spec"]["template"]["spec"]["initContainers"][0]
    args = " ".join(sync["args"])
    for flag in (
        "--repo=",
        "--ref=develop",
        "--period=10s",
        "--root=",
        "--link=",
        "--webhook-url=",
    ):
        assert flag in args
    marketing = next(d for d in docs if d["metadata"]["name"] == "marketing-prod")
    # A pin wins over the branch.
    assert "--ref=v1.2.0" in marketing["spec"]["template"]["spec"]["initContainers"][0]["args"]


def test_repo_without_target_is_discovered_by_the_launcher() -> None:
    docs = [d for d in k8s_docs("analytics") if d["kind"] == "Deployment"]
    finance = next(d for d in docs if d["metadata"]["name"].startswith("finance"))
    env = {e["name"] for e in finance["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert "DAGFLEET_TARGET_ARGS" not in env and "DAGFLEET_CODE_DIR" in env


@pytest.mark.parametrize("cnpg", [True, False])
def test_local_storage_gets_layer_pvcs_and_s3_storage_none(cnpg: bool) -> None:
    local = [
        d["metadata"]["name"]
        for d in k8s_docs("default", cnpg=cnpg)
        if d["kind"] == "PersistentVolumeClaim"
    ]
    assert sorted(local) == sorted(["bronze", "silver", "gold"] * 2)
    s3 = [d for d in k8s_docs("analytics", cnpg=cnpg) if d["kind"] == "PersistentVolumeClaim"]
    assert s3 == []
    kinds = {d["kind"] for d in k8s_docs("default", cnpg=cnpg)}
    assert ("Cluster" in kinds) == cnpg and ("StatefulSet" in kinds) != cnpg


def test_node_port_is_opt_in() -> None:
    def node_ports(**kw: Any) -> list[int]:
        return [
            p["nodePort"]
            for d in k8s_docs("default", **kw)
            if d["kind"] == "Service" and d["spec"].get("type") == "NodePort"
            for p in d["spec"]["ports"]
        ]

    assert node_ports() == []
    assert node_ports(node_port=30000) == [30000]


def test_workspace_lists_every_location_at_its_service() -> None:
    fleet = default_fleet()
    cm = next(
        d
        for d in k8s_docs("default")
        if d["kind"] == "ConfigMap" and "workspace.yaml" in d.get("data", {})
    )
    workspace = yaml.safe_load(cm["data"]["workspace.yaml"])
    hosts = {
        e["grpc_server"]["location_name"]: e["grpc_server"]["host"] for e in workspace["load_from"]
    }
    assert set(hosts) == {loc.name for loc in fleet.locations()}
    assert hosts["medallion-A"] == "medallion-a.dagfleet-a.svc.cluster.local"


def test_no_secret_value_appears_in_any_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret_file = tmp_path / "warehouse-password"
    secret_file.write_text(SECRET_VALUE + "-from-file")
    monkeypatch.setenv(SECRET_ENV, SECRET_VALUE)
    fleet = three_repo_fleet(str(secret_file))
    for node_port, cnpg in ((None, True), (30000, False)):
        for target, result in render_all(fleet, cnpg=cnpg, node_port=node_port).items():
            for path, text in texts(result).items():
                assert SECRET_VALUE not in text, f"{target}/{path} leaks a secret value"
    k8s = texts(render_k8s(fleet))
    sales = yaml.safe_load_all(k8s["manifests/dev/sales-dev.yaml"])
    env = next(iter(sales))["spec"]["template"]["spec"]["containers"][0]["env"]
    token = next(e for e in env if e["name"] == "API_TOKEN")
    assert token["valueFrom"]["secretKeyRef"] == {"name": "dagfleet-sales", "key": SECRET_ENV}


@pytest.mark.parametrize(
    ("env", "repo", "own", "shared"),
    [
        ("dev", "sales", "dagster/dev/repos/sales", "dagster/dev/shared"),
        ("prod", "marketing", "dagster/prod/repos/marketing", "dagster/prod/shared"),
    ],
)
def test_iam_prefix_is_exact(env: str, repo: str, own: str, shared: str) -> None:
    fleet = three_repo_fleet()
    assert s3_prefixes(fleet, env, repo, "ignored") == ("lake-bucket", own, shared)
    policy = json.dumps(prefix_policy(fleet, env, repo, "ignored"))
    assert f"lake-bucket/{own}/*" in policy and f"lake-bucket/{shared}/*" in policy
    # Nothing wider than the location's own prefix and the shared one.
    resources = re.findall(r"s3:::([^\"]*)", policy)
    assert sorted(resources) == sorted(
        ["lake-bucket", f"lake-bucket/{own}/*", f"lake-bucket/{shared}/*"]
    )


def test_iam_prefix_with_local_storage_uses_the_bucket_option() -> None:
    assert s3_prefixes(default_fleet(), "A", "medallion", "dagster-storage") == (
        "dagster-storage",
        "A/repos/medallion",
        "A/shared",
    )


def test_ecs_workspace_uses_cloud_map_names() -> None:
    workspace = render_ecs(three_repo_fleet())["workspace.yaml"]
    entries = {e["grpc_server"]["location_name"]: e["grpc_server"] for e in workspace["load_from"]}
    assert entries["sales-dev"] == {
        "host": "sales-dev.analytics-dev.local",
        "port": 4000,
        "location_name": "sales-dev",
    }
