"""Scenario: a bad release goes live; `dagfleet rollback demo-A` serves the commit before
at once and records it as a pin in the repo file (one added block, reviewable in git);
pushes no longer move demo-A until `dagfleet unpin demo-A`, which follows the branch
again. A commit that never loaded here and fails its load check is refused, and nothing
is pinned. `dagfleet history` shows it all, and `dagfleet logs dagfleet` shows `up`'s log."""

from __future__ import annotations

import difflib
import json
import os
import subprocess
from pathlib import Path

from tests.e2e.conftest import with_asset
from tests.support.fleetproc import DAGFLEET, RunningFleet, wait_for, write_fleet
from tests.support.gitrepo import CodeRepo, git


def dagfleet(fleet: RunningFleet, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DAGFLEET_")}
    env["COLUMNS"] = "250"
    assert fleet.fleet_dir is not None
    where = ["--api", fleet.api, "--fleet", str(fleet.fleet_dir)]
    return subprocess.run(
        [DAGFLEET, *args, *where], capture_output=True, text=True, env=env, timeout=600
    )


def test_rollback_pin_and_unpin(tmp_path: Path, code_repo: CodeRepo, start_fleet) -> None:
    fleet_dir = write_fleet(
        tmp_path / "fleet",
        {"demo": {"git_url": code_repo.url, "module_name": "demo.definitions", "poll_interval": 1}},
        environments=[{"name": "A", "branch": "A"}],
    )
    repo_file = fleet_dir / "repos" / "demo.yaml"
    fleet = start_fleet(fleet_dir, extra=["--no-daemon"])
    fleet.wait_loaded({"demo-A"})
    first = code_repo.tip("A")
    wait_for(lambda: fleet.status("demo-A").get("commit") == first, 60, "commit 1 live")

    second = code_repo.commit({"demo/definitions.py": with_asset("second")}, "second")
    code_repo.push("A")
    wait_for(lambda: fleet.status("demo-A").get("commit") == second, 120, "commit 2 live")
    wait_for(lambda: "second" in fleet.gql.asset_keys("demo-A"), 60, "commit 2 served")

    # Roll back: commit 1 is served at once, and the repo file gains one pins block.
    before = repo_file.read_text()
    back = dagfleet(fleet, "rollback", "demo-A")
    assert back.returncode == 0, back.stdout + back.stderr
    assert f"pinned demo in A to {first[:12]}" in back.stdout
    assert fleet.status("demo-A")["commit"] == first
    wait_for(lambda: "second" not in fleet.gql.asset_keys("demo-A"), 60, "commit 1 served")
    diff = [
        line
        for line in difflib.unified_diff(before.splitlines(), repo_file.read_text().splitlines())
        if line[:1] in "+-" and line[:3] not in ("+++", "---")
    ]
    assert diff == ["+pins:", f"+  A: {first}"]

    # Pinned: a push, even with a forced sync, does not move demo-A.
    third = code_repo.commit({"demo/definitions.py": with_asset("third")}, "third")
    code_repo.push("A")
    synced = dagfleet(fleet, "sync", "demo")
    assert synced.returncode == 0, synced.stdout + synced.stderr
    assert fleet.status("demo-A")["commit"] == first
    assert "third" not in fleet.gql.asset_keys("demo-A")

    # Unpin: demo-A follows branch A again, and serves commit 3 at once.
    unpinned = dagfleet(fleet, "unpin", "demo-A")
    assert unpinned.returncode == 0, unpinned.stdout + unpinned.stderr
    assert fleet.status("demo-A")["commit"] == third
    assert repo_file.read_text() == before
    wait_for(lambda: "third" in fleet.gql.asset_keys("demo-A"), 60, "commit 3 served")

    # A commit that never loaded here and fails its load check: refused, nothing pinned.
    git("branch", "side", "A", cwd=code_repo.work)
    broken = code_repo.commit(
        {"demo/definitions.py": "raise ImportError('no such thing')\n"}, "broken", branch="side"
    )
    code_repo.push("side")
    refused = dagfleet(fleet, "rollback", "demo-A", "--to", broken)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "fails its load check" in refused.stderr and "nothing was pinned" in refused.stderr
    assert repo_file.read_text() == before
    assert fleet.status("demo-A")["commit"] == third

    # The history, newest first: unpin (3), rollback (1), 2, then 1 at start.
    shown = dagfleet(fleet, "history", "demo-A", "-o", "json")
    assert shown.returncode == 0, shown.stderr
    published = [a["commit"] for a in json.loads(shown.stdout) if a["outcome"] == "published"]
    assert published[:4] == [third, first, second, first]

    logs = dagfleet(fleet, "logs", "dagfleet", "--tail", "1000")
    assert logs.returncode == 0 and "starting fleet test" in logs.stdout, logs.stderr
