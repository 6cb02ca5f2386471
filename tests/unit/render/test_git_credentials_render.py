"""A repo's git credentials on Kubernetes: a per-repo Secret mounted into git-sync (the
long-running sidecar and each run's one-time init container), never into the code server."""

from __future__ import annotations

import json
from typing import Any

import kubernetes_validate
import pytest

from dagfleet.render import K8sOptions, render_k8s
from dagfleet.render.k8s_location import (
    GIT_SECRET_DIR,
    GIT_SECRET_VOLUME,
    git_credentials_commands,
    git_credentials_secret,
)
from dagfleet.render.write import texts
from dagfleet.spec.models import Fleet
from tests.unit.render.fleets import make_fleet
from tests.unit.render.test_properties import manifest_docs

pytestmark = pytest.mark.unit
TOKEN_VALUE = "ghp_never-rendered-0123456789"


def fleet() -> Fleet:
    return make_fleet(
        {"name": "acme", "environments": [{"name": "dev"}, {"name": "prod"}]},
        [
            {
                "name": "sales",
                "git_url": "https://git.example.com/data/sales.git",
                "credentials": {"username": "x-access-token", "token": {"from_env": "SALES_TOK"}},
            },
            {
                "name": "billing",
                "git_url": "git@git.example.com:data/billing.git",
                "environments": ["prod"],
                "credentials": {
                    "ssh_key_file": "/run/secrets/billing-key",
                    "ssh_known_hosts_file": "/run/secrets/known_hosts",
                },
            },
            {"name": "public", "git_url": "https://git.example.com/data/public.git"},
        ],
    )


def deployments(monkeypatch: pytest.MonkeyPatch) -> dict[str, dict[str, Any]]:
    monkeypatch.setenv("SALES_TOK", TOKEN_VALUE)
    docs = manifest_docs(texts(render_k8s(fleet(), K8sOptions())))
    deps = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}
    for dep in deps.values():  # the Secret volume and mounts are valid Kubernetes
        kubernetes_validate.validate(dep, "1.30.0", strict=True)
    return deps


def pod_parts(dep: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    spec = dep["spec"]["template"]["spec"]
    (sync,) = spec["initContainers"]
    (server,) = spec["containers"]
    return spec, sync, server


def run_pod(server: dict[str, Any]) -> dict[str, Any]:
    env = {e["name"]: e.get("value") for e in server["env"]}
    k8s: dict[str, Any] = json.loads(env["DAGSTER_CONTAINER_CONTEXT"])["k8s"]
    return k8s


def test_a_token_reaches_git_sync_through_the_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    deps = deployments(monkeypatch)
    for name in ("sales-dev", "sales-prod"):
        spec, sync, server = pod_parts(deps[name])
        assert "--username=x-access-token" in sync["args"]
        assert f"--password-file={GIT_SECRET_DIR}/token" in sync["args"]
        assert {"name": GIT_SECRET_VOLUME, "mountPath": GIT_SECRET_DIR, "readOnly": True} in (
            sync["volumeMounts"]
        )
        secret = {"secretName": "sales-git-credentials", "defaultMode": 0o400}
        assert {"name": GIT_SECRET_VOLUME, "secret": secret} in spec["volumes"]
        assert GIT_SECRET_VOLUME not in {m["name"] for m in server["volumeMounts"]}, (
            "the code server (user code) never sees the git credentials"
        )
        k8s = run_pod(server)
        (run_sync,) = k8s["run_k8s_config"]["pod_spec_config"]["init_containers"]
        assert f"--password-file={GIT_SECRET_DIR}/token" in run_sync["args"]
        assert GIT_SECRET_VOLUME in {m["name"] for m in run_sync["volume_mounts"]}
        assert GIT_SECRET_VOLUME in {v["name"] for v in k8s["volumes"]}
        assert GIT_SECRET_VOLUME not in {m["name"] for m in k8s["volume_mounts"]}
    assert TOKEN_VALUE not in json.dumps(deps), "the token is never read by the render"


def test_a_deploy_key_reaches_git_sync_with_host_keys_checked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    deps = deployments(monkeypatch)
    assert "billing-dev" not in deps
    spec, sync, _ = pod_parts(deps["billing-prod"])
    assert [a for a in sync["args"] if a.startswith("--ssh")] == [
        f"--ssh-key-file={GIT_SECRET_DIR}/ssh",
        "--ssh-known-hosts=true",
        f"--ssh-known-hosts-file={GIT_SECRET_DIR}/known_hosts",
    ]
    assert not [a for a in sync["args"] if a.startswith(("--username", "--password"))]
    volume = next(v for v in spec["volumes"] if v["name"] == GIT_SECRET_VOLUME)
    assert volume["secret"]["secretName"] == git_credentials_secret("billing")


def test_a_repo_without_credentials_mounts_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    deps = deployments(monkeypatch)
    for name in ("public-dev", "public-prod"):
        _, sync, _ = pod_parts(deps[name])
        assert GIT_SECRET_VOLUME not in json.dumps(deps[name])
        assert not [a for a in sync["args"] if "secret" in a or a.startswith("--username")]


def test_the_secrets_to_create_are_listed_per_namespace() -> None:
    assert git_credentials_commands(fleet()) == [
        "kubectl -n acme-prod create secret generic billing-git-credentials "
        "--from-file=ssh=./deploy-key --from-file=known_hosts=./known_hosts",
        *(
            f"kubectl -n acme-{env} create secret generic sales-git-credentials "
            '--from-literal=token="$TOKEN"'
            for env in ("dev", "prod")
        ),
    ]
