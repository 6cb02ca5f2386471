"""`dagfleet release` refuses bad input with exit 2 and a message naming the fix, before
judging anything or touching the deploy repo; `release status` of an empty repo."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from dagfleet.release.deployrepo import DeployRepo
from tests.support.fleetproc import DAGFLEET, write_fleet
from tests.support.gitrepo import CodeRepo


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [DAGFLEET, "release", *args], capture_output=True, text=True, timeout=120, check=False
    )


@pytest.fixture
def deploy_url(tmp_path: Path) -> str:
    remote = tmp_path / "deploy.git"
    subprocess.run(["git", "init", "--quiet", "--bare", str(remote)], check=True)
    return remote.as_uri()


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--repo", "nope"], "unknown repo 'nope': known repos are demo"),
        (["--env", "C"], "unknown environment 'C': fleet.yaml defines A, B"),
        (["--commit", "a" * 40], "--commit needs REPO"),
        (["--repo", "demo", "--commit", "abc123"], "pass the full 40-hex commit"),
        (["--repo", "demo", "--path", "../x"], "must stay inside the deploy repository"),
    ],
)
def test_bad_input_exits_2(tmp_path: Path, deploy_url: str, args: list[str], says: str) -> None:
    fleet = write_fleet(
        tmp_path / "fleet",
        {"demo": {"git_url": "git://git.example.com/demo.git", "module_name": "demo.defs"}},
    )
    result = _run("run", "--fleet", str(fleet), "--deploy-repo", deploy_url, *args)
    assert result.returncode == 2, result.stdout + result.stderr
    assert says in result.stderr
    heads = subprocess.run(
        ["git", "ls-remote", "--heads", deploy_url], capture_output=True, text=True, check=True
    )
    assert heads.stdout == ""  # nothing was pushed


def test_local_git_url_is_refused_with_the_fix(
    tmp_path: Path, code_repo: CodeRepo, deploy_url: str
) -> None:
    fleet = write_fleet(
        tmp_path / "fleet", {"demo": {"git_url": code_repo.url, "module_name": "demo.definitions"}}
    )
    result = _run("run", "--fleet", str(fleet), "--deploy-repo", deploy_url)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "repos/demo.yaml: git_url:" in result.stderr and "cannot reach" in result.stderr


def test_a_deploy_repo_without_render_yaml_is_refused_before_judging(
    tmp_path: Path, deploy_url: str
) -> None:
    fleet = write_fleet(
        tmp_path / "fleet",
        {"demo": {"git_url": "git://git.example.com/demo.git", "module_name": "demo.defs"}},
    )
    result = _run("run", "--fleet", str(fleet), "--deploy-repo", deploy_url)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "render.yaml: image_tag: required" in result.stderr
    assert not (fleet / ".dagfleet" / "git").exists()  # nothing was fetched or judged


def test_promote_without_a_release_in_source_is_refused(tmp_path: Path, deploy_url: str) -> None:
    fleet = write_fleet(
        tmp_path / "fleet",
        {"demo": {"git_url": "git://git.example.com/demo.git", "module_name": "demo.defs"}},
    )
    DeployRepo(deploy_url).update(
        lambda root: (root / "render.yaml").write_text("image_tag: v1\n") and "render"
    )
    result = _run(
        "promote", "demo", "--from", "A", "--to", "B", "--fleet", str(fleet),
        "--deploy-repo", deploy_url,
    )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    assert "demo-A has no released commit to promote" in result.stderr


def test_status_of_an_empty_deploy_repo(deploy_url: str) -> None:
    result = _run("status", "--deploy-repo", deploy_url)
    assert result.returncode == 0, result.stderr
    assert "nothing released yet" in result.stdout
    as_json = _run("status", "--deploy-repo", deploy_url, "-o", "json")
    assert as_json.stdout.strip() == "[]"
