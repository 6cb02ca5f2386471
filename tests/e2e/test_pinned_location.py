"""Scenario: B is pinned to a commit; pushes to B do not move it until the pin changes.
A pin may also name a tag: B serves the tagged commit, and follows the tag when it is
moved on the remote (the pin names the tag, not a commit)."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.e2e.conftest import demo_fleet, with_asset
from tests.support.fleetproc import wait_for
from tests.support.gitrepo import CodeRepo, git


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
    assert fleet.commit("demo-B") == first

    def pin_b(pin: str) -> None:
        repo_file = fleet_dir / "repos" / "demo.yaml"
        doc = yaml.safe_load(repo_file.read_text())
        doc["pins"] = {"B": pin}
        repo_file.write_text(yaml.safe_dump(doc))

    pin_b(newer)
    wait_for(lambda: fleet.status("demo-B").get("commit") == newer, 60, "B follows the new pin")
    assert "newer" in fleet.gql.asset_keys("demo-B")

    # A tag pin: B moves to the tagged commit, not to B's tip.
    git("tag", "release-1", first, cwd=code_repo.work)
    git("push", "--quiet", "origin", "refs/tags/release-1", cwd=code_repo.work)
    code_repo.commit({"demo/definitions.py": with_asset("tip_of_b")}, "tip", branch="B")
    code_repo.push("B")
    pin_b("release-1")
    wait_for(lambda: fleet.status("demo-B").get("commit") == first, 60, "B at release-1")
    assert "newer" not in fleet.gql.asset_keys("demo-B")
    assert "tip_of_b" not in fleet.gql.asset_keys("demo-B")
    assert fleet.status("demo-B")["ref"] == "release-1"

    # The tag is moved on the remote: the next poll follows it.
    git("tag", "--force", "release-1", newer, cwd=code_repo.work)
    git("push", "--quiet", "--force", "origin", "refs/tags/release-1", cwd=code_repo.work)
    wait_for(lambda: fleet.status("demo-B").get("commit") == newer, 60, "B follows the moved tag")
    wait_for(lambda: "newer" in fleet.gql.asset_keys("demo-B"), 30, "newer served in B")
