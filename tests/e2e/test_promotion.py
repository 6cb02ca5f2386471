"""Scenario: promote A's live commit to B (fast-forward) while A's newer tip fails
to load, be refused when B has diverged, promote with --merge, and B following a
plain `git merge A && git push`.

A refusal because A's live commit is not Ready is in
tests/integration/test_promote_refusals.py (deterministic without `dagfleet up`)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.e2e.conftest import demo_fleet, with_asset
from tests.support.fleetproc import promote_demo, wait_for
from tests.support.gitrepo import CodeRepo, git


def promote(fleet, *extra: str) -> subprocess.CompletedProcess[str]:
    return promote_demo(fleet.api.removesuffix("/api/v1"), fleet.fleet_dir, *extra)


def test_promotion_flows(tmp_path: Path, code_repo: CodeRepo, start_fleet) -> None:
    fleet = start_fleet(demo_fleet(tmp_path, code_repo), extra=["--no-daemon"])
    fleet.wait_loaded({"demo-A", "demo-B"})

    # Fast-forward: B's branch moves to what A serves, and B goes live with it.
    a1 = code_repo.commit({"demo/definitions.py": with_asset("a1")}, "a1")
    code_repo.push("A")
    wait_for(lambda: fleet.status("demo-A").get("commit") == a1, 60, "A live at a1")
    # A's newest tip fails to load, so A keeps serving a1: promotion takes what A
    # serves (a1), never A's tip.
    broken = code_repo.commit({"demo/definitions.py": "def broken(:\n"}, "broken tip of A")
    code_repo.push("A")
    wait_for(
        lambda: (
            (c := fleet.condition("demo-A", "Synced")).get("reason") == "DefinitionsInvalid"
            and broken[:12] in c.get("message", "")
        ),
        60,
        "DefinitionsInvalid naming the broken tip on demo-A",
    )
    assert code_repo.tip("A") == broken
    assert fleet.status("demo-A")["commit"] == a1
    assert fleet.condition("demo-A", "Ready")["status"] == "True"
    result = promote(fleet)
    assert result.returncode == 0, result.stderr
    assert "fast-forwarded" in result.stdout and a1[:12] in result.stdout
    assert code_repo.tip("B") == a1
    wait_for(lambda: fleet.status("demo-B").get("commit") == a1, 60, "B live at a1")
    assert "a1" in fleet.gql.asset_keys("demo-B")
    assert fleet.condition("demo-B", "Synced")["status"] == "True"

    # Divergence: a hotfix lands on B directly; promoting without --merge is refused.
    git("fetch", "--quiet", "origin", cwd=code_repo.work)
    git("checkout", "--quiet", "-B", "B", "origin/B", cwd=code_repo.work)
    hotfix = code_repo.commit({"HOTFIX.md": "hotfix\n"}, "hotfix on B", branch="B")
    code_repo.push("B")
    git("checkout", "--quiet", "-B", "A", "origin/A", cwd=code_repo.work)
    a2 = code_repo.commit({"demo/definitions.py": with_asset("a2")}, "a2")
    code_repo.push("A")
    wait_for(lambda: fleet.status("demo-A").get("commit") == a2, 60, "A live at a2")
    refused = promote(fleet)
    assert refused.returncode != 0
    assert "diverged" in refused.stderr and "--merge" in refused.stderr
    assert code_repo.tip("B") == hotfix

    # --merge records a merge commit with both parents; B serves it.
    merged = promote(fleet, "--merge")
    assert merged.returncode == 0, merged.stderr
    tip = code_repo.tip("B")
    parents = git("rev-list", "--parents", "-n", "1", tip, cwd=code_repo.remote).split()[1:]
    assert set(parents) == {hotfix, a2}
    wait_for(lambda: "a2" in fleet.gql.asset_keys("demo-B"), 60, "B serves the merge")

    # The seed's own workflow: merge A into B by hand and push; B follows by itself.
    code_repo.commit({"demo/definitions.py": with_asset("a3")}, "a3")
    code_repo.push("A")
    git("fetch", "--quiet", "origin", cwd=code_repo.work)
    git("checkout", "--quiet", "-B", "B", "origin/B", cwd=code_repo.work)
    git("merge", "--quiet", "--no-edit", "A", cwd=code_repo.work)
    code_repo.push("B")
    wait_for(lambda: "a3" in fleet.gql.asset_keys("demo-B"), 60, "B follows a plain git merge")
