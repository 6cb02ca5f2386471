"""Scenario: pushes to A and B land at the same moment; each serves its own."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.conftest import demo_fleet, with_asset
from tests.support.fleetproc import wait_for
from tests.support.gitrepo import CodeRepo, git


def test_pushes_to_a_and_b_at_once(tmp_path: Path, code_repo: CodeRepo, start_fleet) -> None:
    fleet = start_fleet(demo_fleet(tmp_path, code_repo), extra=["--no-daemon"])
    fleet.wait_loaded({"demo-A", "demo-B"})
    a = code_repo.commit({"demo/definitions.py": with_asset("from_a")}, "a", branch="A")
    b = code_repo.commit({"demo/definitions.py": with_asset("from_b")}, "b", branch="B")
    git("push", "--quiet", "origin", "A:A", "B:B", cwd=code_repo.work)
    wait_for(lambda: "from_a" in fleet.gql.asset_keys("demo-A"), 60, "A live")
    wait_for(lambda: "from_b" in fleet.gql.asset_keys("demo-B"), 60, "B live")
    assert "from_b" not in fleet.gql.asset_keys("demo-A")
    assert "from_a" not in fleet.gql.asset_keys("demo-B")
    fleet.wait_serving("demo-A", a)
    fleet.wait_serving("demo-B", b)
