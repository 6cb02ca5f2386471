"""Scenario: B is pinned to a commit; pushes to B do not move it until the pin changes."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.e2e.conftest import demo_fleet, with_asset
from tests.support.fleetproc import wait_for
from tests.support.gitrepo import CodeRepo


def test_pin_holds_until_changed(tmp_path: Path, code_repo: CodeRepo, start_fleet) -> None:
    first = code_repo.tip("B")
    fleet_dir = demo_fleet(tmp_path, code_repo, pins={"B": first})
    fleet = start_fleet(fleet_dir, extra=["--no-daemon"])
    fleet.wait_loaded({"demo-A", "demo-B"})
    newer = code_repo.commit({"demo/definitions.py": with_asset("newer")}, "newer", branch="B")
    code_repo.push("B")
    code_repo.commit({"demo/definitions.py": with_asset("on_a")}, "a", branch="A")
    code_repo.push("A")
    wait_for(lambda: "on_a" in fleet.gql.asset_keys("demo-A"), 60, "A moves")
    assert fleet.status("demo-B")["commit"] == first

    repo_file = fleet_dir / "repos" / "demo.yaml"
    doc = yaml.safe_load(repo_file.read_text())
    doc["pins"] = {"B": newer}
    repo_file.write_text(yaml.safe_dump(doc))
    wait_for(lambda: fleet.status("demo-B").get("commit") == newer, 60, "B follows the new pin")
    assert "newer" in fleet.gql.asset_keys("demo-B")
