"""Scenario: a code server is killed -9; dagfleet restarts it with no user action."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from tests.e2e.conftest import demo_fleet
from tests.support.fleetproc import wait_for
from tests.support.gitrepo import CodeRepo


def test_killed_code_server_comes_back(tmp_path: Path, code_repo: CodeRepo, start_fleet) -> None:
    fleet = start_fleet(demo_fleet(tmp_path, code_repo), extra=["--no-daemon"])
    fleet.wait_loaded({"demo-A", "demo-B"})
    pid = fleet.pid("demo-A")
    b_pid = fleet.pid("demo-B")
    os.kill(pid, signal.SIGKILL)
    wait_for(
        lambda: (
            fleet.status("demo-A").get("pid") not in (None, pid)
            and fleet.condition("demo-A", "Ready").get("status") == "True"
        ),
        60,
        "a new code server for demo-A",
    )
    fleet.wait_loaded({"demo-A"})
    run_id = fleet.gql.launch("demo-A", "trivial_job")
    assert fleet.gql.wait_run(run_id) == "SUCCESS"
    assert fleet.pid("demo-B") == b_pid
