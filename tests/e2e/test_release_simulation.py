"""Scenario: commits good, broken, good, a dependency change go through `dagfleet release`
into a deploy repository (real `file://` git remotes). After each, the deploy repo's
manifests name the accepted commits only: the broken one never appears; releasing
the same commit again makes no commit; promotion moves B only to what A accepted. The
status ConfigMap the release renders beside the manifests carries each rejection and
acceptance, and the rendered in-cluster API serving it reports them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from dagfleet.release.deployrepo import DeployRepo
from dagfleet.render import k8s_dagfleet as kd
from tests.e2e.conftest import demo_fleet, with_asset
from tests.support.fleetproc import DAGFLEET, free_port, wait_for
from tests.support.gitrepo import CodeRepo, git

REQS = "dagster==1.13.27\nsix==1.16.0\n"
USES_SIX = with_asset("uses_six", extra="import six  # noqa: F401\n")
BROKEN = "from dagster import Definitions\ndefs = Definitions(\n"


class Deploy:
    """The deploy repository: a bare remote and a clone the test reads it through."""

    def __init__(self, root: Path) -> None:
        self.remote = root / "deploy.git"
        subprocess.run(["git", "init", "--quiet", "--bare", str(self.remote)], check=True)
        self.clone = root / "deploy-read"
        # The deploy repo's own render options: the image tag CI pushes (never `latest`).
        DeployRepo(self.url, "main", "clusters/prod").update(
            lambda where: (where / "render.yaml").write_text("image_tag: v1.0.0\n") and "render"
        )

    @property
    def url(self) -> str:
        return self.remote.as_uri()

    def head(self) -> str:
        return git("rev-parse", "refs/heads/main", cwd=self.remote)

    def files(self) -> dict[str, str]:
        """Every file under clusters/prod at the tip of main."""
        if not self.clone.exists():
            subprocess.run(
                ["git", "clone", "--quiet", "--branch", "main", self.url, str(self.clone)],
                check=True,
            )
        git("fetch", "--quiet", "origin", cwd=self.clone)
        git("reset", "--quiet", "--hard", "origin/main", cwd=self.clone)
        root = self.clone / "clusters" / "prod"
        return {str(p.relative_to(root)): p.read_text() for p in root.rglob("*") if p.is_file()}

    def commits(self) -> dict[str, str]:
        doc = yaml.safe_load(self.files()["commits.yaml"])
        return {name: entry["commit"] for name, entry in doc["locations"].items()}

    def deployment_commit(self, location: str) -> str:
        """The commit label of the location's Deployment in the rendered manifests."""
        for path, text in self.files().items():
            if not path.startswith("manifests/"):
                continue
            for doc in yaml.safe_load_all(text):
                if (
                    doc
                    and doc.get("kind") == "Deployment"
                    and doc["metadata"].get("labels", {}).get("dagfleet.dev/location")
                    == location.lower()
                ):
                    return str(doc["spec"]["template"]["metadata"]["labels"]["dagfleet.dev/commit"])
        raise AssertionError(f"no Deployment for {location}")

    def log(self) -> str:
        return git("log", "--format=%B", "refs/heads/main", cwd=self.remote)


@pytest.fixture
def git_daemon(code_repo: CodeRepo) -> Iterator[str]:
    """The code repo served read-only over git:// on 127.0.0.1 (a render refuses file://
    URLs: a cluster cannot reach them); the test still pushes to the bare repo directly."""
    port = free_port()
    base = code_repo.remote.parent
    proc = subprocess.Popen(
        [
            "git", "daemon", "--export-all", "--reuseaddr", "--listen=127.0.0.1",
            f"--port={port}", f"--base-path={base}", str(base),
        ],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"git://127.0.0.1:{port}/{code_repo.remote.name}"
    try:
        wait_for(
            lambda: (
                subprocess.run(
                    ["git", "ls-remote", url], capture_output=True, check=False, timeout=10
                ).returncode
                == 0
            ),
            20,
            "git daemon answering",
        )
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def release(fleet: Path, deploy: Deploy, command: str, *args: str) -> tuple[int, Any, str]:
    """`dagfleet release COMMAND ... -o json` against the deploy repo's clusters/prod."""
    where = ["--deploy-repo", deploy.url, "--path", "clusters/prod", "-o", "json"]
    if command != "status":
        where += ["--fleet", str(fleet)]
    result = subprocess.run(
        [DAGFLEET, "release", command, *args, *where],
        capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    doc = json.loads(result.stdout) if result.stdout.strip() else {}
    return result.returncode, doc, result.stderr


def outcome(doc: dict[str, Any], location: str) -> dict[str, Any]:
    (found,) = [o for o in doc["outcomes"] if o["location"] == location]
    return found


def test_release_simulation(tmp_path: Path, code_repo: CodeRepo, git_daemon: str) -> None:
    fleet = demo_fleet(tmp_path, code_repo, git_url=git_daemon)
    deploy = Deploy(tmp_path)

    # 1. good: the initial commit loads and is released to A.
    good1 = code_repo.tip("A")
    code, doc, err = release(fleet, deploy, "run", "--repo", "demo", "--env", "A")
    assert code == 0, err
    assert outcome(doc, "demo-A")["result"] == "released"
    assert deploy.commits() == {"demo-A": good1}
    assert deploy.deployment_commit("demo-A") == good1
    assert "/demo:v1.0.0" in deploy.files()["manifests/a/demo-a.yaml"]
    # Flux watches this branch and applies this path's manifests, chart included.
    sync = deploy.files()["flux/sync.yaml"]
    assert deploy.url in sync and "path: ./clusters/prod/manifests" in sync
    assert "kind: HelmRelease" in deploy.files()["manifests/instance/release.yaml"]
    assert f"release demo to A: {good1[:12]}" in deploy.log()
    assert f"demo-A (repo demo, environment A): released {good1}" in deploy.log()

    # Releasing the same commit again changes nothing and makes no commit.
    head = deploy.head()
    code, doc, err = release(fleet, deploy, "run", "--repo", "demo", "--env", "A")
    assert code == 0, err
    assert outcome(doc, "demo-A")["result"] == "unchanged"
    assert doc["deploy_commit"] is None and deploy.head() == head

    # 2. broken: rejected with the reason, exit 1, the manifests keep good1.
    broken = code_repo.commit({"demo/definitions.py": BROKEN}, "broken")
    code_repo.push("A")
    code, doc, err = release(fleet, deploy, "run", "--repo", "demo", "--env", "A")
    assert code == 1, err
    rejected = outcome(doc, "demo-A")
    assert rejected["result"] == "rejected" and rejected["reason"] == "DefinitionsInvalid"
    assert "SyntaxError" in rejected["message"] and rejected["serving"] == good1
    assert deploy.commits() == {"demo-A": good1}
    assert deploy.deployment_commit("demo-A") == good1
    files = deploy.files()
    assert not any(broken in t for p, t in files.items() if not is_status(p))
    status = json.loads(files["status/demo-A.json"])
    synced = {c["type"]: c for c in status["conditions"]}["Synced"]
    assert synced["status"] == "False" and synced["reason"] == "DefinitionsInvalid"
    assert synced["message"].startswith(broken[:12])
    assert status["commit"] == good1
    # The status ConfigMap Flux applies holds the same rejection (same commit as status/).
    cm = status_configmap(files)
    assert cm["data"]["demo-A.json"] == files["status/demo-A.json"]
    assert synced_of(cm["data"]["demo-A.json"])["reason"] == "DefinitionsInvalid"
    # ... and the in-cluster API serving that ConfigMap reports it.
    with in_cluster_api(files, tmp_path / "pod-rejected") as api:
        auth = {"Authorization": f"Bearer {API_TOKEN}"}
        locations = httpx.get(f"{api}/api/v1/locations", headers=auth)
        assert locations.status_code == 200, locations.text
        (served,) = [loc for loc in locations.json() if loc["location"] == "demo-A"]
        assert served["commit"] == good1
        api_synced = {c["type"]: c for c in served["conditions"]}["Synced"]
        assert api_synced["status"] == "False", served
        assert api_synced["reason"] == "DefinitionsInvalid"
        assert api_synced["message"].startswith(broken[:12])
        metrics = httpx.get(f"{api}/metrics", headers=auth)
        assert metrics.status_code == 200, metrics.text
        # Last good wins: still Ready (good1 serves); the rejection counts as a failure.
        assert metric(metrics.text, "dagfleet_location_ready", "demo-A") == 1.0
        assert metric(metrics.text, "dagfleet_location_sync_failures_total", "demo-A") == 1.0
    # Releasing the broken commit again: same rejection, no commit (ConfigMap included).
    head = deploy.head()
    code, doc, err = release(fleet, deploy, "run", "--repo", "demo", "--env", "A")
    assert code == 1 and doc["deploy_commit"] is None and deploy.head() == head, err

    # 3. good again: released over the broken one.
    good2 = code_repo.commit({"demo/definitions.py": with_asset("four")}, "four")
    code_repo.push("A")
    code, doc, err = release(fleet, deploy, "run", "--repo", "demo", "--env", "A")
    assert code == 0, err
    assert deploy.commits() == {"demo-A": good2}
    assert deploy.deployment_commit("demo-A") == good2
    files = deploy.files()
    record = status_configmap(files)["data"]["demo-A.json"]
    assert json.loads(record)["commit"] == good2 and synced_of(record)["status"] == "True"
    with in_cluster_api(files, tmp_path / "pod-good2") as api:
        auth = {"Authorization": f"Bearer {API_TOKEN}"}
        (served,) = [
            loc
            for loc in httpx.get(f"{api}/api/v1/locations", headers=auth).json()
            if loc["location"] == "demo-A"
        ]
        assert served["commit"] == good2
        assert {c["type"]: c for c in served["conditions"]}["Synced"]["status"] == "True"
        metrics = httpx.get(f"{api}/metrics", headers=auth).text
        assert metric(metrics, "dagfleet_location_ready", "demo-A") == 1.0
        assert metric(metrics, "dagfleet_location_sync_failures_total", "demo-A") == 1.0

    # 4. a dependency change: a new package from the index, installed and loaded.
    deps = code_repo.commit(
        {"requirements.txt": REQS, "demo/definitions.py": USES_SIX}, "needs six"
    )
    code_repo.push("A")
    code, doc, err = release(fleet, deploy, "run", "--repo", "demo", "--env", "A")
    assert code == 0, err
    assert deploy.commits() == {"demo-A": deps}
    assert deploy.deployment_commit("demo-A") == deps

    # A's branch breaks again: rejected, and promotion still takes A's released commit.
    broken2 = code_repo.commit({"demo/definitions.py": BROKEN + "# again\n"}, "broken again")
    code_repo.push("A")
    code, doc, err = release(fleet, deploy, "run", "--repo", "demo", "--env", "A")
    assert code == 1 and outcome(doc, "demo-A")["serving"] == deps, err
    # The branch goes back to the released commit: only the status changes, and is pushed.
    git("push", "--quiet", "--force", "origin", f"{deps}:A", cwd=code_repo.work)
    code, doc, err = release(fleet, deploy, "run", "--repo", "demo", "--env", "A")
    assert code == 0 and outcome(doc, "demo-A")["result"] == "unchanged", err
    assert doc["deploy_commit"] is not None
    status = json.loads(deploy.files()["status/demo-A.json"])
    assert {c["type"]: c for c in status["conditions"]}["Synced"]["status"] == "True"
    git("push", "--quiet", "--force", "origin", f"{broken2}:A", cwd=code_repo.work)

    # A broken tip on B's branch is never what promotion moves B to: A's commit is.
    git("checkout", "--quiet", "B", cwd=code_repo.work)
    git("merge", "--quiet", "--ff-only", broken, cwd=code_repo.work)
    code_repo.push("B")
    code, doc, err = release(fleet, deploy, "promote", "demo", "--from", "A", "--to", "B")
    assert code == 0, err
    assert outcome(doc, "demo-B")["result"] == "released"
    assert deploy.commits() == {"demo-A": deps, "demo-B": deps}
    assert deploy.deployment_commit("demo-B") == deps
    assert f"promote demo from A to B: {deps[:12]}" in deploy.log()
    files = deploy.files()
    for bad in (broken, broken2):
        assert not any(bad in t for p, t in files.items() if not is_status(p))

    # `release status` reads the same record back.
    code, rows, err = release(fleet, deploy, "status")
    assert code == 0, err
    by_name = {r["location"]: r for r in rows}
    assert by_name["demo-A"]["commit"] == deps and by_name["demo-B"]["commit"] == deps
    assert by_name["demo-A"]["ready"] is True


def is_status(path: str) -> bool:
    """A status record (status/, or the ConfigMap of them): it names rejected commits."""
    return path.startswith("status/") or path == "manifests/instance/status.yaml"


def metric(text: str, name: str, location: str) -> float:
    """The value of `name` for the location in a Prometheus text exposition."""
    for line in text.splitlines():
        if line.startswith(name + "{") and f'location="{location}"' in line:
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no {name} for {location} in:\n{text}")


# ---- the status ConfigMap the release renders, served by the in-cluster API -------------
API_TOKEN = "t0ken-for-the-in-cluster-api-123456"


def status_configmap(files: dict[str, str]) -> dict[str, Any]:
    """`manifests/instance/status.yaml` of the deploy repo, listed by the kustomization
    Flux applies (so it reaches the cluster in the same commit as the status change)."""
    assert (
        "instance/status.yaml" in yaml.safe_load(files["manifests/kustomization.yaml"])["resources"]
    )
    (cm,) = [d for d in yaml.safe_load_all(files["manifests/instance/status.yaml"]) if d]
    assert cm["kind"] == "ConfigMap"
    return cm


def synced_of(record: str) -> dict[str, Any]:
    return {c["type"]: c for c in json.loads(record)["conditions"]}["Synced"]


@contextmanager
def in_cluster_api(files: dict[str, str], pod: Path) -> Iterator[str]:
    """The deploy repo's rendered dagfleet Deployment run as a real process: its program,
    the fleet files and the status ConfigMap laid out where the Deployment mounts them."""
    objs = [d for d in yaml.safe_load_all(files["manifests/instance/dagfleet.yaml"]) if d]
    (deployment,) = [o for o in objs if o["kind"] == "Deployment"]
    (program_cm,) = [o for o in objs if o["kind"] == "ConfigMap"]
    frontdoor = yaml.safe_load_all(files["manifests/instance/frontdoor.yaml"])
    (fleet_cm,) = [o for o in frontdoor if o and o["kind"] == "ConfigMap"]
    spec = deployment["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    mounts = {m["name"]: pod / m["mountPath"].lstrip("/") for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["status"]["configMap"]["name"] == status_configmap(files)["metadata"]["name"]
    for name, data in (
        ("program", program_cm["data"]),
        ("status", status_configmap(files)["data"]),
        (
            "fleet",
            {i["path"]: fleet_cm["data"][i["key"]] for i in volumes["fleet"]["configMap"]["items"]},
        ),
    ):
        for key, text in data.items():
            (mounts[name] / key).parent.mkdir(parents=True, exist_ok=True)
            (mounts[name] / key).write_text(text)
    env = {
        v["name"]: str(pod / v["value"].lstrip("/")) if v["value"].startswith("/") else v["value"]
        for v in container["env"]
        if "value" in v
    }
    port = free_port()
    env |= {"DAGFLEET_API_TOKENS": f"{API_TOKEN}:viewer", "DAGFLEET_WEBHOOK_SECRET": "s3cret"}
    env["DAGFLEET_API_PORT"] = str(port)
    program = mounts["program"] / next(iter(program_cm["data"]))
    proc = subprocess.Popen(
        [sys.executable, str(program)], env={**os.environ, **env},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
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
