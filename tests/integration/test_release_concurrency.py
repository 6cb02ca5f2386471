"""Two releases at once keep both changes: a push refused because the other release
pushed first starts again from the new tip (release/deployrepo.py, release/releaser.py)."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from dagfleet.layout import Layout
from dagfleet.release import releaser
from dagfleet.release.deployrepo import DeployRepo
from dagfleet.spec import load_fleet
from tests.support.fleetproc import free_port, wait_for, write_fleet
from tests.support.gitrepo import CodeRepo, git


def _bare(path: Path) -> str:
    subprocess.run(["git", "init", "--quiet", "--bare", str(path)], check=True)
    return path.as_uri()


def _show(remote: Path, rel: str, branch: str = "main") -> str:
    return git("show", f"refs/heads/{branch}:{rel}", cwd=remote)


def test_racing_updates_both_land(tmp_path: Path) -> None:
    """Both changes clone the same tip (a barrier holds them), one push loses, retries on
    top of the winner: both files are there, each in its own commit."""
    url = _bare(tmp_path / "deploy.git")
    deploy = DeployRepo(url, "main", "clusters/prod")
    deploy.update(lambda root: (root / "seed.txt").write_text("seed\n") and "seed")
    barrier = threading.Barrier(2)
    attempts = {"one": 0, "two": 0}
    pushed: dict[str, str | None] = {}

    def change(name: str):  # type: ignore[no-untyped-def]
        def edit(root: Path) -> str:
            attempts[name] += 1
            if attempts[name] == 1:
                barrier.wait(timeout=30)  # both have cloned the same tip
            (root / f"{name}.txt").write_text(name + "\n")
            return f"write {name}"

        return edit

    threads = [
        threading.Thread(target=lambda n=n: pushed.__setitem__(n, deploy.update(change(n))))
        for n in ("one", "two")
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert pushed["one"] and pushed["two"]
    assert sorted(attempts.values()) == [1, 2]  # exactly one lost the race and retried
    remote = tmp_path / "deploy.git"
    assert _show(remote, "clusters/prod/one.txt") == "one"
    assert _show(remote, "clusters/prod/two.txt") == "two"
    log = git("log", "--format=%s", "refs/heads/main", cwd=remote).splitlines()
    assert sorted(log) == ["seed", "write one", "write two"]


def test_no_change_makes_no_commit(tmp_path: Path) -> None:
    url = _bare(tmp_path / "deploy.git")
    deploy = DeployRepo(url, "main")
    first = deploy.update(lambda root: (root / "a.txt").write_text("a\n") and "a")
    assert first is not None
    assert deploy.update(lambda root: (root / "a.txt").write_text("a\n") and "again") is None
    assert git("rev-parse", "refs/heads/main", cwd=tmp_path / "deploy.git") == first
    assert deploy.read("a.txt") == {"a.txt": "a\n"}


@pytest.fixture
def git_daemon(code_repo: CodeRepo) -> Iterator[str]:
    """The code repo over git:// on 127.0.0.1 (renders refuse file:// URLs)."""
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
                    ["git", "ls-remote", url], capture_output=True, timeout=10
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


def test_two_releases_at_once_keep_both(
    tmp_path: Path, code_repo: CodeRepo, git_daemon: str
) -> None:
    """`release run` for A and for B at the same time: both commits are in commits.yaml and
    in the rendered Deployments, whichever pushed first."""
    fleet_dir = write_fleet(
        tmp_path / "fleet", {"demo": {"git_url": git_daemon, "module_name": "demo.definitions"}}
    )
    fleet = load_fleet(fleet_dir)
    layout = Layout.for_fleet(fleet_dir)
    url = _bare(tmp_path / "deploy.git")
    deploy = DeployRepo(url, "main", "prod")
    deploy.update(lambda root: (root / "render.yaml").write_text("image_tag: v1\n") and "render")
    reports: dict[str, releaser.Report] = {}
    threads = [
        threading.Thread(
            target=lambda e=e: reports.__setitem__(e, releaser.run(fleet, layout, deploy, env=e))
        )
        for e in ("A", "B")
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    assert reports["A"].ok and reports["B"].ok
    assert reports["A"].deploy_commit and reports["B"].deploy_commit
    sha = code_repo.tip("A")
    record = yaml.safe_load(_show(tmp_path / "deploy.git", "prod/commits.yaml"))
    assert {n: e["commit"] for n, e in record["locations"].items()} == {
        "demo-A": sha,
        "demo-B": sha,
    }
    for env in ("a", "b"):
        text = _show(tmp_path / "deploy.git", f"prod/manifests/{env}/demo-{env}.yaml")
        assert f"dagfleet.dev/commit: {sha}" in text
