"""dagfleet in the cluster: its Deployment, Service, least-privilege identity and the
optional ServiceMonitor (manifests/instance/dagfleet.yaml)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dagfleet.render import K8sOptions, render_k8s
from dagfleet.render import k8s_dagfleet as kd
from dagfleet.render.common import RenderError
from dagfleet.spec import load_fleet
from tests.unit.render.fleets import default_fleet, three_repo_fleet

PATH = "manifests/instance/dagfleet.yaml"


def objects(**opts: Any) -> list[dict[str, Any]]:
    return list(render_k8s(default_fleet(), K8sOptions(**opts))[PATH])


def kinds(objs: list[dict[str, Any]]) -> list[str]:
    return [o["kind"] for o in objs]


def pod_spec(objs: list[dict[str, Any]]) -> dict[str, Any]:
    (dep,) = [o for o in objs if o["kind"] == "Deployment"]
    return dict(dep["spec"]["template"]["spec"])


def test_rendered_by_default_and_listed_in_the_kustomization() -> None:
    files = render_k8s(default_fleet(), K8sOptions())
    assert kinds(files[PATH]) == ["ConfigMap", "ServiceAccount", "Deployment", "Service"]
    assert PATH.removeprefix("manifests/") in files["manifests/kustomization.yaml"]["resources"]
    assert PATH not in render_k8s(default_fleet(), K8sOptions(dagfleet_api=False))


def test_least_privilege_no_kubernetes_api_access_at_all() -> None:
    objs = objects()
    assert not {"Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"} & set(kinds(objs))
    (sa,) = [o for o in objs if o["kind"] == "ServiceAccount"]
    spec = pod_spec(objs)
    assert spec["serviceAccountName"] == sa["metadata"]["name"] == "dagfleet"
    assert sa["automountServiceAccountToken"] is False
    assert spec["automountServiceAccountToken"] is False
    (container,) = spec["containers"]
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] and not security["allowPrivilegeEscalation"]
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert spec["securityContext"]["runAsNonRoot"] is True


def test_the_deployment_runs_the_program_with_secrets_by_reference_only() -> None:
    objs = objects(registry="registry.example.com/p", image_tag="1.2.3")
    (container,) = pod_spec(objs)["containers"]
    assert container["image"] == "registry.example.com/p/dagfleet:1.2.3"
    (program,) = [o for o in objs if o["kind"] == "ConfigMap"]
    assert container["command"] == ["python", f"{kd.PROGRAM_DIR}/{kd.PROGRAM}"]
    assert program["data"] == {kd.PROGRAM: kd.SERVER_SOURCE}
    env = {e["name"]: e for e in container["env"]}
    tokens = env["DAGFLEET_API_TOKENS"]["valueFrom"]["secretKeyRef"]
    assert tokens == {"name": "dagfleet-api", "key": "api-tokens"}  # required
    hook = env["DAGFLEET_WEBHOOK_SECRET"]["valueFrom"]["secretKeyRef"]
    assert hook["optional"] is True
    assert not [e for e in container["env"] if "TOKEN" in e["name"] and "value" in e]
    probe = container["readinessProbe"]["httpGet"]
    assert probe == {"path": "/api/v1/healthz", "port": "http"}


def test_the_service_exposes_api_webhooks_and_metrics_on_one_port() -> None:
    objs = objects()
    (svc,) = [o for o in objs if o["kind"] == "Service"]
    assert svc["spec"]["type"] == "ClusterIP"
    assert svc["spec"]["ports"] == [{"name": "http", "port": 80, "targetPort": "http"}]
    (dep,) = [o for o in objs if o["kind"] == "Deployment"]
    labels = dep["spec"]["template"]["metadata"]["labels"]
    assert svc["spec"]["selector"].items() <= labels.items()


def test_a_change_of_the_fleet_files_rolls_the_pod() -> None:
    def annotation(fleet: Any) -> str:
        objs = render_k8s(fleet, K8sOptions())[PATH]
        (dep,) = [o for o in objs if o["kind"] == "Deployment"]
        return str(dep["spec"]["template"]["metadata"]["annotations"]["dagfleet.dev/fleet-files"])

    assert annotation(default_fleet()) == annotation(default_fleet())
    assert annotation(default_fleet()) != annotation(three_repo_fleet())


@pytest.mark.parametrize("enabled", [True, False])
def test_the_service_monitor_is_optional(enabled: bool) -> None:
    objs = objects(service_monitor=enabled)
    monitors = [o for o in objs if o["kind"] == "ServiceMonitor"]
    assert len(monitors) == int(enabled)
    if enabled:
        (mon,) = monitors
        (svc,) = [o for o in objs if o["kind"] == "Service"]
        assert mon["apiVersion"] == "monitoring.coreos.com/v1"
        assert mon["metadata"]["namespace"] == svc["metadata"]["namespace"]
        assert mon["spec"]["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items()
        (endpoint,) = mon["spec"]["endpoints"]
        assert endpoint["port"] == "http" and endpoint["path"] == "/metrics"
        creds = endpoint["authorization"]["credentials"]
        assert creds == {"name": "dagfleet-api", "key": "metrics-token"}


def test_the_status_configmap_is_what_the_deployment_mounts() -> None:
    fleet = default_fleet()
    cm = kd.status_configmap(fleet, {"medallion-B": "{}", "medallion-A": '{"a": 1}'})
    assert list(cm["data"]) == ["medallion-A.json", "medallion-B.json"]
    assert cm["data"]["medallion-A.json"] == '{"a": 1}'
    volumes = {v["name"]: v for v in pod_spec(objects())["volumes"]}
    assert volumes["status"]["configMap"] == {"name": cm["metadata"]["name"], "optional": True}
    (dep,) = [o for o in objects() if o["kind"] == "Deployment"]
    assert cm["metadata"]["namespace"] == dep["metadata"]["namespace"]


# ---- releases on webhooks (K8sOptions.deploy_repo) -------------------------------------
DEPLOY = "ssh://git@git.example.com/platform/deploy.git"


def test_without_a_deploy_repo_nothing_of_releasing_is_rendered() -> None:
    spec = pod_spec(objects())
    (container,) = spec["containers"]
    assert not [e for e in container["env"] if e["name"].startswith("DAGFLEET_DEPLOY")]
    assert "deploy-credentials" not in {v["name"] for v in spec["volumes"]}


def test_a_deploy_repo_gives_the_pod_what_the_judge_needs() -> None:
    objs = objects(image_tag="v1", deploy_repo=DEPLOY, deploy_branch="prod", deploy_path="/c/p/")
    (dep,) = [o for o in objs if o["kind"] == "Deployment"]
    assert dep["spec"]["replicas"] == 1
    assert dep["spec"]["strategy"] == {"type": "Recreate"}  # never two workers at once
    spec = pod_spec(objs)
    (container,) = spec["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["DAGFLEET_DEPLOY_REPO"] == DEPLOY
    assert env["DAGFLEET_DEPLOY_BRANCH"] == "prod"
    assert env["DAGFLEET_DEPLOY_PATH"] == "c/p"
    assert env["DAGFLEET_DEPLOY_CREDENTIALS_DIR"] == kd.DEPLOY_CREDENTIALS_DIR
    assert env["UV_CACHE_DIR"].startswith(kd.WORK_DIR + "/")
    volumes = {v["name"]: v for v in spec["volumes"]}
    # The credentials by reference: an optional Secret, read-only, owner-readable.
    assert volumes["deploy-credentials"]["secret"] == {
        "secretName": kd.DEPLOY_SECRET,
        "optional": True,
        "defaultMode": 0o400,
    }
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    assert mounts["deploy-credentials"]["readOnly"] is True
    assert mounts["deploy-credentials"]["mountPath"] == kd.DEPLOY_CREDENTIALS_DIR
    # Writable: the work dir (mirrors, environments, checkouts) and /tmp, both emptyDir.
    assert volumes["work"] == {"name": "work", "emptyDir": {}}
    assert mounts["work"]["mountPath"] == kd.WORK_DIR and not mounts["work"].get("readOnly")
    assert volumes["tmp"] == {"name": "tmp", "emptyDir": {}}
    # The repo files' from_env references (environment values, tokens): an optional Secret.
    assert container["envFrom"] == [
        {"secretRef": {"name": kd.RELEASE_ENV_SECRET, "optional": True}}
    ]
    # Judging loads definitions beside the API: more memory than the API alone.
    assert container["resources"]["limits"]["memory"] == "2Gi"
    # Least privilege stays: no token, no Role, read-only root filesystem.
    assert spec["automountServiceAccountToken"] is False
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert not {"Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"} & set(kinds(objs))


@pytest.mark.parametrize(
    ("opts", "says"),
    [
        ({"deploy_repo": "file:///srv/deploy.git"}, "deploy_repo: file:///srv/deploy.git"),
        ({"deploy_repo": "/srv/deploy.git"}, "cannot reach"),
        ({"deploy_repo": DEPLOY, "deploy_path": "a/../../b"}, "deploy_path"),
    ],
)
def test_a_deploy_repo_the_cluster_cannot_use_is_refused_with_the_fix(
    opts: dict[str, str], says: str
) -> None:
    with pytest.raises(RenderError, match="deploy_") as caught:
        objects(**opts)
    assert says in str(caught.value)


def test_the_deployment_with_a_deploy_repo_is_valid_kubernetes() -> None:
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    for obj in objects(image_tag="v1", deploy_repo=DEPLOY):
        kubernetes_validate.validate(obj, "1.30.0", strict=True)


def test_with_a_deploy_repo_the_pod_reads_the_fleet_files_whole(tmp_path: Path) -> None:
    """The judge needs build steps, environment and uv controls, which the front door's
    copy of the fleet files leaves out: the pod gets a ConfigMap of its own."""
    fleet = three_repo_fleet()
    objs = list(render_k8s(fleet, K8sOptions(image_tag="v1", deploy_repo=DEPLOY))[PATH])
    (cm,) = [o for o in objs if o["metadata"]["name"] == kd.RELEASE_FLEET_CONFIGMAP]
    volume = {v["name"]: v for v in pod_spec(objs)["volumes"]}["fleet"]["configMap"]
    assert volume["name"] == kd.RELEASE_FLEET_CONFIGMAP
    for item in volume["items"]:
        (tmp_path / item["path"]).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / item["path"]).write_text(cm["data"][item["key"]])
    back = load_fleet(tmp_path)
    assert back.spec == fleet.spec
    assert back.repos == fleet.repos  # build, environment, uv, credentials included
    assert any(r.build or r.environment for r in fleet.repos.values())
