"""Scenario: a push with a syntax error is never published; the old code keeps
serving, the location stays Ready with a DefinitionsInvalid condition naming the
commit, and a fixing push recovers."""

from __future__ import annotations

import os
from pathlib import Path

from tests.e2e.conftest import demo_fleet, with_asset
from tests.support.fleetproc import wait_for
from tests.support.gitrepo import CodeRepo


def test_broken_push_is_not_published(tmp_path: Path, code_repo: CodeRepo, start_fleet) -> None:
    fleet = start_fleet(demo_fleet(tmp_path, code_repo), extra=["--no-daemon"])
    fleet.wait_loaded({"demo-A", "demo-B"})
    good = code_repo.tip("A")

    bad = code_repo.commit({"demo/definitions.py": "def broken(:\n"}, "oops")
    code_repo.push("A")
    synced = wait_for(
        lambda: (
            (c := fleet.condition("demo-A", "Synced")).get("status") == "False"
            and c.get("reason") == "DefinitionsInvalid"
            and c
        ),
        60,
        "DefinitionsInvalid on demo-A",
    )
    assert bad[:12] in synced["message"]
    assert "SyntaxError" in synced["message"]
    assert fleet.condition("demo-A", "Ready")["status"] == "True"
    assert fleet.commit("demo-A") == good
    assert os.readlink(fleet.state / "checkouts" / "demo-A" / "current") == good
    assert "one" in fleet.gql.asset_keys("demo-A")
    run_id = fleet.gql.launch("demo-A", "trivial_job")
    assert fleet.gql.wait_run(run_id) == "SUCCESS"

    fixed = code_repo.commit({"demo/definitions.py": with_asset("five")}, "fix")
    code_repo.push("A")
    wait_for(lambda: "five" in fleet.gql.asset_keys("demo-A"), 60, "fixed code live")
    fleet.wait_serving("demo-A", fixed)
    assert "DefinitionsInvalid" not in str(fleet.status("demo-A")["conditions"])
