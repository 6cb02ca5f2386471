"""Scenario: while the fleet runs, `dagfleet repo add` registers a second repository and
`repo update` syncs it at once; its locations load without restarting the webserver or
the existing code servers.
Suspending it stops its code servers; resuming brings it back at the same commit."""

from __future__ import annotations

import subprocess
from pathlib import Path

import psutil

from tests.e2e.conftest import demo_fleet
from tests.support.fleetproc import DAGFLEET, dagfleet_processes, wait_for
from tests.support.gitrepo import CodeRepo


def cli(fleet, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            DAGFLEET,
            "repo",
            *args,
            "--fleet",
            str(fleet.fleet_dir),
            "--api",
            fleet.api.removesuffix("/api/v1"),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def webserver_pid(fleet) -> int:
    for proc in dagfleet_processes(fleet.state):
        if "dagster_webserver" in " ".join(proc.cmdline()):
            return proc.pid
    raise AssertionError("no webserver")


def test_add_suspend_resume_remove(tmp_path: Path, code_repo: CodeRepo, start_fleet) -> None:
    fleet = start_fleet(demo_fleet(tmp_path, code_repo), extra=["--no-daemon"])
    fleet.wait_loaded({"demo-A", "demo-B"})
    before = {
        "web": webserver_pid(fleet),
        "A": fleet.pid("demo-A"),
        "B": fleet.pid("demo-B"),
    }
    other = CodeRepo(tmp_path / "other", name="other")
    added = cli(
        fleet, "add", "other", "--git-url", other.url, "--module", "demo.definitions", "--no-wait"
    )
    assert added.returncode == 0, added.stderr
    assert (fleet.fleet_dir / "repos" / "other.yaml").exists()
    # Sync at once, before the registry watcher may have seen the new file: the sync
    # still finds both locations and reports the commit each one now serves.
    updated = cli(fleet, "update", "other")
    assert updated.returncode == 0, updated.stderr
    synced = dict(line.split(": ", 1) for line in updated.stdout.splitlines())
    assert sorted(synced) == ["other-A", "other-B"], updated.stdout
    fleet.wait_loaded({"other-A", "other-B"}, timeout=180)
    for location, line in synced.items():
        assert fleet.commit(location)[:12] in line, updated.stdout
    after = {
        "web": webserver_pid(fleet),
        "A": fleet.pid("demo-A"),
        "B": fleet.pid("demo-B"),
    }
    assert after == before

    commit = fleet.status("other-A")["commit"]
    pid = fleet.status("other-A")["pid"]
    assert cli(fleet, "suspend", "other").returncode == 0
    wait_for(lambda: not psutil.pid_exists(pid), 60, "other-A's code server stopped")
    wait_for(
        lambda: fleet.condition("other-A", "Ready").get("reason") == "Suspended", 30, "Suspended"
    )
    assert (fleet.fleet_dir / "repos" / "other.yaml").exists()

    assert cli(fleet, "resume", "other").returncode == 0
    fleet.wait_loaded({"other-A", "other-B"}, timeout=120)
    assert fleet.status("other-A")["commit"] == commit

    removed = cli(fleet, "remove", "other")
    assert removed.returncode == 0, removed.stderr
    wait_for(lambda: "other-A" not in fleet.gql.locations(), 60, "other-A gone from the UI")
    assert not (fleet.fleet_dir / "repos" / "other.yaml").exists()
    assert fleet.pid("demo-A") == before["A"]
