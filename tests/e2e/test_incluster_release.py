"""Scenario: dagfleet in the cluster releases on push webhooks. The rendered Deployment's
program (`serve.py`) runs as a real process laid out as the pod (a deploy repository
configured), against a code repo served over git:// and a `file://` deploy repository:
- a signed push of a good commit answers 202 with the queued location and ends with that
  commit in the deploy repo's commits.yaml and Deployment, and in the API's status;
- a signed push of a broken commit leaves commits.yaml and the Deployments alone; the
  status (in the deploy repo and from the API, with its metrics) reports the rejection;
- unsigned and badly signed webhooks are refused with 401 and queue nothing;
- two pushes in a row release the newest commit, never the one between;
- a sync through the API releases again and answers with the outcome;
- promotion through the API writes B's manifests with the commit A serves.

The render refuses a `file://` deploy repository (a cluster cannot reach it): the test
renders with a remote-looking URL and points the pod's DAGFLEET_DEPLOY_REPO at the local
bare repository, as the other tests of the program set its port."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from dagfleet.release.deployrepo import DeployRepo
from dagfleet.render import K8sOptions, render_k8s
from dagfleet.render import k8s_dagfleet as kd
from dagfleet.spec import load_fleet
from tests.e2e.conftest import demo_fleet, with_asset
from tests.e2e.test_release_simulation import (  # noqa: F401 - git_daemon is a fixture
    BROKEN,
    Deploy,
    git_daemon,
    metric,
)
from tests.support.fleetproc import free_port, wait_for
from tests.support.gitrepo import CodeRepo

ADMIN = "admin-t0ken-for-the-in-cluster-api-1234"
SECRET = "webhook-s3cret-for-the-in-cluster-api"
# What the render is given; the pod is pointed at the local bare repository instead.
RENDERED_DEPLOY_URL = "ssh://git@git.example.com/platform/deploy.git"
JUDGE_WAIT = 600.0


def signed(body: bytes, secret: str = SECRET) -> dict[str, str]:
    return {
        "X-Hub-Signature-256": "sha256="
        + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest(),
        "X-GitHub-Event": "push",
        "X-GitHub-Delivery": str(uuid.uuid4()),
    }


def push_body(clone_url: str, branch: str, after: str) -> bytes:
    return json.dumps(
        {"ref": f"refs/heads/{branch}", "after": after, "repository": {"clone_url": clone_url}}
    ).encode()


@contextmanager
def releasing_api(fleet_dir: Path, deploy: Deploy, pod: Path) -> Iterator[str]:
    """The rendered dagfleet Deployment (deploy_repo set) run as its pod runs it."""
    opts = K8sOptions(
        image_tag="v1.0.0", deploy_repo=RENDERED_DEPLOY_URL, deploy_path="clusters/prod"
    )
    objs = list(render_k8s(load_fleet(fleet_dir), opts)["manifests/instance/dagfleet.yaml"])
    (deployment,) = [o for o in objs if o["kind"] == "Deployment"]
    configmaps = {o["metadata"]["name"]: o for o in objs if o["kind"] == "ConfigMap"}
    spec = deployment["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    mounts = {m["name"]: pod / m["mountPath"].lstrip("/") for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in spec["volumes"]}
    for key, text in configmaps[kd.PROGRAM_CONFIGMAP]["data"].items():
        (mounts["program"] / key).parent.mkdir(parents=True, exist_ok=True)
        (mounts["program"] / key).write_text(text)
    fleet_cm = volumes["fleet"]["configMap"]
    for item in fleet_cm["items"]:
        target = mounts["fleet"] / item["path"]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(configmaps[fleet_cm["name"]]["data"][item["key"]])
    mounts["status"].mkdir(parents=True, exist_ok=True)  # the optional status ConfigMap: absent
    env = {
        v["name"]: str(pod / v["value"].lstrip("/")) if v["value"].startswith("/") else v["value"]
        for v in container["env"]
        if "value" in v
    }
    assert env["DAGFLEET_DEPLOY_REPO"] == RENDERED_DEPLOY_URL
    port = free_port()
    env |= {
        "DAGFLEET_DEPLOY_REPO": deploy.url,
        "DAGFLEET_API_PORT": str(port),
        "DAGFLEET_API_TOKENS": f"{ADMIN}:admin",
        "DAGFLEET_WEBHOOK_SECRET": SECRET,
        "UV_CACHE_DIR": os.environ.get("UV_CACHE_DIR", ""),  # the suite's warm cache
    }
    env = {k: v for k, v in env.items() if v}
    env.pop("HOME", None)  # the pod's HOME is its /tmp; here, keep the user's git config
    log = (pod / "serve.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, str(mounts["program"] / kd.PROGRAM)],
        env={**os.environ, **env},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:

        def up() -> bool:
            if proc.poll() is not None:
                raise AssertionError((pod / "serve.log").read_text())
            try:
                return httpx.get(f"{url}{kd.HEALTH_PATH}", timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        wait_for(up, 60, "the in-cluster API")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        print((pod / "serve.log").read_text()[-4000:])


def hook(api: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(f"{api}/api/v1/hooks/git", content=body, headers=headers, timeout=30)


def location(api: str, name: str) -> dict[str, Any]:
    auth = {"Authorization": f"Bearer {ADMIN}"}
    response = httpx.get(f"{api}/api/v1/locations", headers=auth, timeout=30)
    assert response.status_code == 200, response.text
    found = [loc for loc in response.json() if loc["location"] == name]
    return found[0] if found else {}


def synced(status: dict[str, Any]) -> dict[str, Any]:
    return {c["type"]: c for c in status.get("conditions", [])}.get("Synced", {})


def waited(predicate: Callable[[], bool], what: str) -> float:
    started = time.monotonic()
    wait_for(predicate, JUDGE_WAIT, what)
    seconds = time.monotonic() - started
    print(f"{what}: {seconds:.1f}s")
    return seconds


def test_pushes_release_through_the_in_cluster_dagfleet(
    tmp_path: Path,
    code_repo: CodeRepo,
    git_daemon: str,  # noqa: F811 - the fixture
) -> None:
    fleet = demo_fleet(tmp_path, code_repo, git_url=git_daemon)
    deploy = Deploy(tmp_path)
    # Opting in: render.yaml names the deploy repo the in-cluster dagfleet releases into.
    DeployRepo(deploy.url, "main", "clusters/prod").update(
        lambda where: (
            (where / "render.yaml").write_text(
                f"image_tag: v1.0.0\ndeploy_repo: {RENDERED_DEPLOY_URL}\n"
            )
            and "render: in-cluster releases"
        )
    )
    with releasing_api(fleet, deploy, tmp_path / "pod") as api:
        # Refused: unsigned, and signed with another secret; nothing is queued.
        head = deploy.head()
        good1 = code_repo.tip("A")
        body = push_body(git_daemon, "A", good1)
        assert hook(api, body, {"X-GitHub-Event": "push"}).status_code == 401
        bad = hook(api, body, signed(body, "not-the-secret"))
        assert bad.status_code == 401 and "bad webhook signature" in bad.text

        # 1. a good commit: 202 with the queued location, then released.
        accepted = hook(api, body, signed(body))
        assert accepted.status_code == 202, accepted.text
        answer = accepted.json()
        assert answer["accepted"] is True and answer["locations"] == ["demo-A"], answer
        assert answer["repos"] == ["demo"] and answer["branch"] == "A"
        assert deploy.head() == head  # the bad ones queued nothing before it
        waited(lambda: "commits.yaml" in deploy.files() and deploy.commits().get("demo-A") == good1,
               "push of a good commit -> in commits.yaml")  # fmt: skip
        assert deploy.deployment_commit("demo-A") == good1
        assert f"release demo to A: {good1[:12]}" in deploy.log()
        assert "demo-B" not in deploy.commits()  # B's branch was not pushed
        # The manifests the release wrote keep the in-cluster releases configured.
        rendered = deploy.files()["manifests/instance/dagfleet.yaml"]
        assert RENDERED_DEPLOY_URL in rendered and "clusters/prod" in rendered
        waited(lambda: location(api, "demo-A").get("commit") == good1, "API serves the release")
        assert synced(location(api, "demo-A"))["status"] == "True"

        # Repeated pushes coalesce to the newest: two commits pushed, two webhooks; the
        # branch tip is read when a release starts, so the middle commit is never released.
        middle = code_repo.commit({"demo/definitions.py": with_asset("four")}, "four")
        newest = code_repo.commit({"demo/definitions.py": with_asset("five")}, "five")
        code_repo.push("A")
        for sha in (middle, newest):
            body = push_body(git_daemon, "A", sha)
            assert hook(api, body, signed(body)).status_code == 202
        waited(lambda: deploy.commits().get("demo-A") == newest, "two pushes -> the newest")
        assert middle[:12] not in deploy.log()
        good1 = newest  # what A serves from here on

        # 2. a broken commit: rejected, the manifests keep good1, the status says why.
        broken = code_repo.commit({"demo/definitions.py": BROKEN}, "broken")
        code_repo.push("A")
        body = push_body(git_daemon, "A", broken)
        accepted = hook(api, body, signed(body))
        assert accepted.status_code == 202, accepted.text

        def rejected() -> bool:
            text = deploy.files().get("status/demo-A.json")
            return bool(text) and synced(json.loads(text)).get("message", "").startswith(
                broken[:12]
            )

        waited(rejected, "push of a broken commit -> rejection in status/")
        assert deploy.commits() == {"demo-A": good1}
        assert deploy.deployment_commit("demo-A") == good1
        files = deploy.files()
        assert not any(
            broken in text
            for path, text in files.items()
            if not (path.startswith("status/") or path == "manifests/instance/status.yaml")
        )
        record = json.loads(files["status/demo-A.json"])
        assert synced(record)["reason"] == "DefinitionsInvalid" and record["commit"] == good1
        # The API serves the rejection it just computed (before Flux applies anything).
        waited(
            lambda: synced(location(api, "demo-A")).get("status") == "False",
            "API serves the rejection",
        )
        served = location(api, "demo-A")
        assert served["commit"] == good1, served
        assert synced(served)["status"] == "False"
        assert synced(served)["reason"] == "DefinitionsInvalid"
        metrics = httpx.get(
            f"{api}/metrics", headers={"Authorization": f"Bearer {ADMIN}"}, timeout=30
        ).text
        assert metric(metrics, "dagfleet_location_ready", "demo-A") == 1.0  # good1 serves
        assert metric(metrics, "dagfleet_location_sync_failures_total", "demo-A") == 1.0

        # A sync through the API releases A's tip again and waits: still rejected, said so.
        synced_a = httpx.post(
            f"{api}/api/v1/repos/demo/sync",
            params={"env": "A", "wait": "true"},
            headers={"Authorization": f"Bearer {ADMIN}"},
            timeout=JUDGE_WAIT,
        )
        assert synced_a.status_code == 200, synced_a.text
        (one,) = synced_a.json()["outcomes"]
        assert one["location"] == "demo-A" and one["reason"] == "DefinitionsInvalid", one
        assert one["error"] and one["commit"] == good1 and one["changed"] is False

        # 3. promotion through the API: B gets what A serves (good1), not A's broken tip.
        started = time.monotonic()
        promoted = httpx.post(
            f"{api}/api/v1/promote",
            json={"repo": "demo", "source": "A", "target": "B"},
            headers={"Authorization": f"Bearer {ADMIN}"},
            timeout=JUDGE_WAIT,
        )
        print(f"promote through the API: {time.monotonic() - started:.1f}s")
        assert promoted.status_code == 200, promoted.text
        assert promoted.json()["commit"] == good1
        assert deploy.commits() == {"demo-A": good1, "demo-B": good1}
        assert deploy.deployment_commit("demo-B") == good1
        assert f"promote demo from A to B: {good1[:12]}" in deploy.log()
