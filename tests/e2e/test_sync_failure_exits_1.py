"""Scenario: `dagfleet sync` says what changed and exits 0; when a location's sync
fails (a push whose definitions do not load) it prints why and exits 1, in every
output format, so scripts and CI see the failure (it used to print red and exit 0)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.e2e.conftest import demo_fleet, with_asset
from tests.support.fleetproc import DAGFLEET
from tests.support.gitrepo import CodeRepo


def cli(fleet, *args: str) -> subprocess.CompletedProcess[str]:  # type: ignore[no-untyped-def]
    where = ["--fleet", str(fleet.fleet_dir), "--api", fleet.api.removesuffix("/api/v1")]
    return subprocess.run(
        [DAGFLEET, *args, *where], capture_output=True, text=True, check=False, timeout=600
    )


def test_sync_exit_codes(tmp_path: Path, code_repo: CodeRepo, start_fleet) -> None:  # type: ignore[no-untyped-def]
    # Polling once an hour: only the CLI's syncs pick up the pushes below.
    fleet = start_fleet(demo_fleet(tmp_path, code_repo, poll_interval=3600), extra=["--no-daemon"])
    fleet.wait_loaded({"demo-A", "demo-B"})
    before = fleet.commit("demo-A")  # waits for the status to name it (the UI may show it first)

    good = code_repo.commit({"demo/definitions.py": with_asset("synced")}, "good")
    code_repo.push("A")
    ok = cli(fleet, "sync", "demo", "--env", "A")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert f"demo-A: {before[:12]} -> {good[:12]}" in ok.stdout

    bad = code_repo.commit({"demo/definitions.py": "def broken(:\n"}, "oops")
    code_repo.push("A")
    failed = cli(fleet, "repo", "sync", "demo", "--env", "A")
    assert failed.returncode == 1, failed.stdout + failed.stderr
    (line,) = [s for s in failed.stdout.splitlines() if s.startswith("demo-A:")]
    assert "DefinitionsInvalid" in line, failed.stdout

    as_json = cli(fleet, "repo", "sync", "demo", "--env", "A", "-o", "json")
    assert as_json.returncode == 1, as_json.stderr
    result = json.loads(as_json.stdout)
    (outcome,) = result["outcomes"]
    assert outcome["location"] == "demo-A" and outcome["error"], result
    assert bad[:12] in outcome["error"] or outcome["reason"] == "DefinitionsInvalid"
    assert fleet.status("demo-A")["commit"] == good  # the broken push was never published

    everything = cli(fleet, "sync")  # all repos: demo-B is fine, demo-A fails
    assert everything.returncode == 1, everything.stdout + everything.stderr
    assert "demo-B: unchanged at" in everything.stdout
