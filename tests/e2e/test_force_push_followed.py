"""Scenario: someone force-pushes A back to an older commit; A follows it. Then
branch B is deleted: B keeps serving its last commit with RefNotFound."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.conftest import demo_fleet, with_asset
from tests.support.fleetproc import wait_for
from tests.support.gitrepo import CodeRepo, git


def test_force_push_to_older_commit(tmp_path: Path, code_repo: CodeRepo, start_fleet) -> None:
    first = code_repo.tip("A")
    code_repo.commit({"demo/definitions.py": with_asset("four")}, "four")
    code_repo.push("A")
    fleet = start_fleet(demo_fleet(tmp_path, code_repo), extra=["--no-daemon"])
    fleet.wait_loaded({"demo-A", "demo-B"})
    wait_for(lambda: "four" in fleet.gql.asset_keys("demo-A"), 60, "four live")

    git("reset", "--quiet", "--hard", first, cwd=code_repo.work)
    code_repo.push("A", force=True)
    wait_for(lambda: fleet.status("demo-A").get("commit") == first, 60, "A back at first")
    wait_for(lambda: "four" not in fleet.gql.asset_keys("demo-A"), 30, "four gone")
    assert fleet.condition("demo-A", "Ready")["status"] == "True"

    # The remote's HEAD is A and cannot be deleted; B can.
    served_b = fleet.status("demo-B")["commit"]
    git("push", "--quiet", "origin", ":B", cwd=code_repo.work)
    cond = wait_for(
        lambda: (c := fleet.condition("demo-B", "Synced")).get("reason") == "RefNotFound" and c,
        60,
        "RefNotFound",
    )
    assert "'B'" in cond["message"]
    assert fleet.condition("demo-B", "Ready")["status"] == "True"
    assert fleet.status("demo-B")["commit"] == served_b
    assert "one" in fleet.gql.asset_keys("demo-B")
