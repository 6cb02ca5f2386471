"""The in-cluster dagfleet Deployment's program (`serve.py` in its ConfigMap) serves the API.

The rendered program runs here as the Deployment runs it: a real Python process with
the environment the Deployment sets, the fleet files laid out as the `<fleet>-fleet`
ConfigMap's items put them (read-only), a status record where the optional status
ConfigMap is mounted, and real HTTP: the API answers with tokens only, lists the
fleet's repos and the recorded status (as recorded, not "stopped"), serves metrics,
verifies webhooks and then, without a deploy repository to release into, refuses them
naming the setting (tests/e2e/test_incluster_release.py releases with one), and refuses
to start without tokens.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from dagfleet.render import K8sOptions, render_k8s
from dagfleet.render import k8s_dagfleet as kd
from dagfleet.status import LocationStatus
from dagfleet.status.conditions import ConditionType, Reason
from tests.support.fleetproc import free_port, wait_for
from tests.unit.render.fleets import default_fleet

pytestmark = pytest.mark.integration

TOKEN = "t0ken-for-the-in-cluster-api-123456"
WEBHOOK_SECRET = "webhook-secret-for-tests"
SHA = "0123456789abcdef0123456789abcdef01234567"


def rendered_objects() -> list[dict[str, Any]]:
    files = render_k8s(default_fleet(), K8sOptions())
    return list(files["manifests/instance/dagfleet.yaml"])


def by_kind(kind: str) -> dict[str, Any]:
    (obj,) = [o for o in rendered_objects() if o["kind"] == kind]
    return obj


def lay_out_pod(tmp: Path) -> tuple[Path, dict[str, str]]:
    """The pod's files and environment from the rendered objects; returns the program."""
    objs = render_k8s(default_fleet(), K8sOptions())
    (frontdoor_cm,) = [
        o for o in objs["manifests/instance/frontdoor.yaml"] if o["kind"] == "ConfigMap"
    ]
    deployment = by_kind("Deployment")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    root = tmp / "pod"

    def at(path: str) -> Path:
        return root / path.lstrip("/")

    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    program = by_kind("ConfigMap")
    for key, text in program["data"].items():
        at(mounts["program"]).mkdir(parents=True, exist_ok=True)
        (at(mounts["program"]) / key).write_text(text)
    for item in volumes["fleet"]["configMap"]["items"]:
        target = at(mounts["fleet"]) / item["path"]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(frontdoor_cm["data"][item["key"]])
    for path in sorted(at(mounts["fleet"]).rglob("*"), reverse=True):
        path.chmod(stat.S_IRUSR | (stat.S_IXUSR if path.is_dir() else 0))
    at(mounts["fleet"]).chmod(stat.S_IRUSR | stat.S_IXUSR)
    # The status ConfigMap (status_configmap) with a record as the release flow keeps it,
    # its keys as files where the Deployment mounts it.
    status = LocationStatus(location="medallion-A", repo="medallion", env="A", commit=SHA)
    status = status.with_condition(
        ConditionType.SERVING, "True", Reason.CODE_SERVER_RUNNING, "serving"
    )
    status_cm = kd.status_configmap(default_fleet(), {status.location: status.model_dump_json()})
    assert volumes["status"]["configMap"]["name"] == status_cm["metadata"]["name"]
    at(mounts["status"]).mkdir(parents=True)
    for key, text in status_cm["data"].items():
        (at(mounts["status"]) / key).write_text(text)
    env = {}
    for var in container["env"]:
        if "value" in var:
            value = var["value"]
            env[var["name"]] = str(at(value)) if value.startswith("/") else value
    env["DAGFLEET_API_TOKENS"] = f"{TOKEN}:viewer"
    env["DAGFLEET_WEBHOOK_SECRET"] = WEBHOOK_SECRET
    return at(mounts["program"]) / kd.PROGRAM, env


@pytest.fixture
def api(tmp_path: Path) -> Iterator[str]:
    program, env = lay_out_pod(tmp_path)
    port = free_port()
    env["DAGFLEET_API_PORT"] = str(port)
    proc = subprocess.Popen(
        [sys.executable, str(program)],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:

        def up() -> bool:
            if proc.poll() is not None:
                raise AssertionError(proc.stderr.read().decode() if proc.stderr else "")
            try:
                return httpx.get(f"{url}{kd.HEALTH_PATH}", timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        wait_for(up, 60, "the in-cluster API")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_the_rendered_program_serves_the_fleet_read_only(api: str) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    assert httpx.get(f"{api}/api/v1/repos").status_code == 401
    repos = httpx.get(f"{api}/api/v1/repos", headers=auth)
    assert repos.status_code == 200, repos.text
    assert "medallion" in repos.text
    locations = httpx.get(f"{api}/api/v1/locations", headers=auth)
    assert locations.status_code == 200, locations.text
    (recorded,) = [loc for loc in locations.json() if loc["location"] == "medallion-A"]
    assert recorded["commit"] == SHA
    serving = [c for c in recorded["conditions"] if c["type"] == "Serving"]
    assert serving and serving[0]["status"] == "True", recorded  # not "FleetStopped"
    metrics = httpx.get(f"{api}/metrics", headers=auth)
    assert metrics.status_code == 200 and "medallion-A" in metrics.text


def test_without_a_deploy_repo_a_verified_webhook_is_refused_naming_the_setting(
    api: str,
) -> None:
    repo = default_fleet().repos["medallion"]
    body = json.dumps(
        {"ref": "refs/heads/main", "repository": {"clone_url": repo.git_url}}
    ).encode()
    unsigned = httpx.post(f"{api}/api/v1/hooks/git", content=body)
    assert unsigned.status_code == 401
    signature = "sha256=" + hmac.new(WEBHOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()
    signed = httpx.post(
        f"{api}/api/v1/hooks/git",
        content=body,
        headers={"X-Hub-Signature-256": signature, "X-GitHub-Event": "push"},
    )
    assert signed.status_code == 503, signed.text
    assert "no deploy repository is configured" in signed.text
    assert "DAGFLEET_DEPLOY_REPO" in signed.text and "deploy_repo" in signed.text


def test_the_program_refuses_to_start_without_tokens(tmp_path: Path) -> None:
    program, env = lay_out_pod(tmp_path)
    env["DAGFLEET_API_TOKENS"] = ""
    env["DAGFLEET_API_PORT"] = str(free_port())
    done = subprocess.run(
        [sys.executable, str(program)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "DAGFLEET_API_TOKENS" in done.stderr
