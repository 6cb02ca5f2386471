"""Scenario: commits good, broken, good, a dependency change go through `dagfleet release`
into a deploy repository (real `file://` git remotes). After each, the deploy repo's
manifests name the accepted commits only: the broken one never appears; releasing
the same commit again makes no commit; promotion moves B only to what A accepted."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from dagfleet.release.deployrepo import DeployRepo
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
    manifests = {p: t for p, t in deploy.files().items() if not p.startswith("status/")}
    assert not any(broken in t for t in manifests.values())
    status = json.loads(deploy.files()["status/demo-A.json"])
    synced = {c["type"]: c for c in status["conditions"]}["Synced"]
    assert synced["status"] == "False" and synced["reason"] == "DefinitionsInvalid"
    assert synced["message"].startswith(broken[:12])
    assert status["commit"] == good1

    # 3. good again: released over the broken one.
    good2 = code_repo.commit({"demo/definitions.py": with_asset("four")}, "four")
    code_repo.push("A")
    code, doc, err = release(fleet, deploy, "run", "--repo", "demo", "--env", "A")
    assert code == 0, err
    assert deploy.commits() == {"demo-A": good2}
    assert deploy.deployment_commit("demo-A") == good2

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
        assert not any(bad in t for p, t in files.items() if not p.startswith("status/"))

    # `release status` reads the same record back.
    code, rows, err = release(fleet, deploy, "status")
    assert code == 0, err
    by_name = {r["location"]: r for r in rows}
    assert by_name["demo-A"]["commit"] == deps and by_name["demo-B"]["commit"] == deps
    assert by_name["demo-A"]["ready"] is True
