"""Scenario: a code server hangs (SIGSTOP: alive, but it answers nothing). The
gRPC health check notices, dagfleet kills it and starts a new one, with no
user action; the other environment's server is left alone."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from tests.e2e.conftest import demo_fleet
from tests.support.fleetproc import wait_for
from tests.support.gitrepo import CodeRepo


def test_hung_code_server_is_replaced(tmp_path: Path, code_repo: CodeRepo, start_fleet) -> None:
    fleet = start_fleet(demo_fleet(tmp_path, code_repo), extra=["--no-daemon"])
    fleet.wait_loaded({"demo-A", "demo-B"})
    pid = fleet.pid("demo-A")
    b_pid = fleet.pid("demo-B")
    os.kill(pid, signal.SIGSTOP)
    try:
        wait_for(
            lambda: (
                fleet.status("demo-A").get("pid") not in (None, pid)
                and fleet.condition("demo-A", "Ready").get("status") == "True"
            ),
            120,
            "a new code server for demo-A",
        )
    finally:
        # If the test failed, let the stopped process die normally with the fleet.
        if os.path.exists(f"/proc/{pid}"):
            os.kill(pid, signal.SIGCONT)
    assert not os.path.exists(f"/proc/{pid}") or _is_zombie(pid)
    assert "health check 3/3 failed" in fleet.log()
    fleet.wait_loaded({"demo-A"})
    run_id = fleet.gql.launch("demo-A", "trivial_job")
    assert fleet.gql.wait_run(run_id) == "SUCCESS"
    assert fleet.pid("demo-B") == b_pid


def _is_zombie(pid: int) -> bool:
    with open(f"/proc/{pid}/stat") as fh:
        return fh.read().split(")")[-1].split()[0] == "Z"
