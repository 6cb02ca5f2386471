"""Scenario: the git remote becomes unreachable, then comes back."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.conftest import demo_fleet, with_asset
from tests.support.fleetproc import wait_for
from tests.support.gitrepo import CodeRepo


def test_unreachable_remote_keeps_serving_and_recovers(
    tmp_path: Path, code_repo: CodeRepo, start_fleet
) -> None:
    fleet = start_fleet(demo_fleet(tmp_path, code_repo), extra=["--no-daemon"])
    fleet.wait_loaded({"demo-A", "demo-B"})
    moved = code_repo.remote.with_name("moved.git")
    code_repo.remote.rename(moved)
    try:
        wait_for(
            lambda: fleet.condition("demo-A", "Synced").get("reason") == "GitFetchFailed",
            60,
            "GitFetchFailed",
        )
        assert fleet.condition("demo-A", "Ready")["status"] == "True"
        run_id = fleet.gql.launch("demo-A", "trivial_job")
        assert fleet.gql.wait_run(run_id) == "SUCCESS"
    finally:
        moved.rename(code_repo.remote)
    wait_for(lambda: fleet.condition("demo-A", "Synced").get("status") == "True", 60, "recovery")
    code_repo.commit({"demo/definitions.py": with_asset("later")}, "later")
    code_repo.push("A")
    wait_for(lambda: "later" in fleet.gql.asset_keys("demo-A"), 60, "new commit after recovery")
