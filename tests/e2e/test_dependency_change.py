"""Scenario: a commit changes the dependencies. The environment is rebuilt once,
both environments share it after promotion, and an uninstallable requirement is
never published (the last good commit keeps serving)."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.conftest import demo_fleet, with_asset
from tests.support.fleetproc import wait_for
from tests.support.gitrepo import CodeRepo, git

REQS = "dagster==1.13.27\nsix==1.16.0\n"
USES_SIX = with_asset("uses_six", extra="import six  # noqa: F401\n")


def test_dependency_change_rebuilds_once(tmp_path: Path, code_repo: CodeRepo, start_fleet) -> None:
    fleet = start_fleet(demo_fleet(tmp_path, code_repo), extra=["--no-daemon"])
    fleet.wait_loaded({"demo-A", "demo-B"})
    old_hash = fleet.status("demo-A")["dependency_hash"]
    assert fleet.status("demo-B")["dependency_hash"] == old_hash

    sha = code_repo.commit(
        {"requirements.txt": REQS, "demo/definitions.py": USES_SIX}, "needs six", branch="A"
    )
    code_repo.push("A")
    wait_for(lambda: fleet.status("demo-A").get("commit") == sha, 300, "A live with six")
    new_hash = fleet.status("demo-A")["dependency_hash"]
    assert new_hash != old_hash
    marker = fleet.state / "venvs" / new_hash / ".dagfleet-complete"
    built_at = marker.stat().st_mtime_ns

    git("checkout", "--quiet", "B", cwd=code_repo.work)
    git("merge", "--quiet", "--ff-only", "A", cwd=code_repo.work)
    code_repo.push("B")
    wait_for(lambda: fleet.status("demo-B").get("commit") == sha, 120, "B live with six")
    assert fleet.status("demo-B")["dependency_hash"] == new_hash
    assert marker.stat().st_mtime_ns == built_at  # shared, not rebuilt
    envs = [p for p in (fleet.state / "venvs").iterdir() if not p.name.startswith(".")]
    assert len(envs) == 2

    bad = code_repo.commit(
        {"requirements.txt": REQS + "this-package-does-not-exist-dagfleet==0.0.1\n"},
        "bad requirement",
        branch="A",
    )
    code_repo.push("A")
    cond = wait_for(
        lambda: (
            (c := fleet.condition("demo-A", "Synced")).get("reason") == "DependencyInstallFailed"
            and c
        ),
        300,
        "DependencyInstallFailed",
    )
    assert bad[:12] in cond["message"]
    assert "this-package-does-not-exist-dagfleet" in cond["message"]
    assert fleet.status("demo-A")["commit"] == sha
    assert fleet.condition("demo-A", "Ready")["status"] == "True"
    assert "uses_six" in fleet.gql.asset_keys("demo-A")
