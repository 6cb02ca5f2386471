"""Scenario: dagfleet is killed -9 at each step of a publish and started again.

After every crash the `current` link is either absent or points at a complete
checkout, and the final start converges on the branch tip with no orphans.
"""

from __future__ import annotations

import os
from pathlib import Path

import psutil

from dagfleet.faults import ENV, STEPS
from tests.e2e.conftest import demo_fleet, with_asset
from tests.support.fleetproc import RunningFleet, dagfleet_processes, wait_for
from tests.support.gitrepo import CodeRepo


def _current_is_consistent(checkouts: Path) -> None:
    link = checkouts / "current"
    if not link.is_symlink():
        return
    target = os.readlink(link)
    assert len(target) == 40 and "/" not in target, target
    assert (checkouts / target / "demo" / "definitions.py").is_file()


def is_code_server(proc: psutil.Process) -> bool:
    """A cold `dagster api grpc`, or a server forked from a warm parent (named so)."""
    return proc.name() == "dagfleet-server" or "api grpc" in " ".join(proc.cmdline())


def test_kill_at_each_step_then_converge(tmp_path: Path, code_repo: CodeRepo, start_fleet) -> None:
    fleet_dir = demo_fleet(tmp_path, code_repo, environments=["A"])
    for i, step in enumerate(STEPS):
        code_repo.commit({"demo/definitions.py": with_asset(f"step_{i}")}, f"step {i}")
        code_repo.push("A")
        crashing = RunningFleet(fleet_dir, extra=["--no-daemon"], env={ENV: step}).start()
        assert crashing.proc is not None
        crashing.proc.wait(240)
        assert crashing.proc.returncode == -9, (step, crashing.log()[-2000:])
        _current_is_consistent(crashing.state / "checkouts" / "demo-A")

    fleet = start_fleet(fleet_dir, extra=["--no-daemon"])
    fleet.wait_loaded({"demo-A"})
    tip = code_repo.tip("A")
    wait_for(lambda: fleet.status("demo-A").get("commit") == tip, 120, "converged on tip")
    last = f"step_{len(STEPS) - 1}"
    wait_for(lambda: last in fleet.gql.asset_keys("demo-A"), 30, "the webserver serving the tip")
    assert os.readlink(fleet.state / "checkouts" / "demo-A" / "current") == tip
    # Orphans of the crashed runs were stopped: one code server, one webserver remain.
    wait_for(
        lambda: sum(map(is_code_server, dagfleet_processes(fleet.state))) == 1,
        30,
        "a single code server",
    )
