"""Scenario: SIGTERM stops everything within 30 s; a second `up` resumes from
.dagfleet without cloning or installing again."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.conftest import demo_fleet
from tests.support.fleetproc import dagfleet_processes, wait_for
from tests.support.gitrepo import CodeRepo


def test_sigterm_then_resume(tmp_path: Path, code_repo: CodeRepo, start_fleet) -> None:
    fleet_dir = demo_fleet(tmp_path, code_repo)
    first = start_fleet(fleet_dir)
    first.wait_loaded({"demo-A", "demo-B"})
    # webserver, two code servers, then the daemon (started once the locations are up)
    wait_for(lambda: len(dagfleet_processes(first.state)) >= 4, 60, "all children")
    mirror = first.state / "git" / "demo.git"
    venvs = sorted(p for p in (first.state / "venvs").iterdir() if not p.name.startswith("."))
    stamps = {p: (p / ".dagfleet-complete").stat().st_mtime_ns for p in venvs}
    mirror_inode = mirror.stat().st_ino
    elapsed = first.stop()
    assert elapsed < 30
    assert dagfleet_processes(first.state) == []

    second = start_fleet(fleet_dir)
    second.wait_loaded({"demo-A", "demo-B"})
    assert mirror.stat().st_ino == mirror_inode
    after = sorted(p for p in (second.state / "venvs").iterdir() if not p.name.startswith("."))
    assert after == venvs
    assert {p: (p / ".dagfleet-complete").stat().st_mtime_ns for p in after} == stamps
    assert "--- dagfleet: starting" in (second.state / "logs" / "demo-A.log").read_text()
