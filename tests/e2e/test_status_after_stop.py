"""Scenario: after `dagfleet up` stops (SIGTERM), status says the fleet is stopped, not
Ready, and still names the commit last served; starting again serves it again."""

from __future__ import annotations

import json
from pathlib import Path

from dagfleet.layout import Layout
from dagfleet.status.liveness import fleet_running
from tests.e2e.conftest import demo_fleet
from tests.support.fleetproc import wait_for
from tests.support.gitrepo import CodeRepo


def test_sigterm_leaves_fleet_stopped_statuses(
    tmp_path: Path, code_repo: CodeRepo, start_fleet
) -> None:
    fleet_dir = demo_fleet(tmp_path, code_repo)
    layout = Layout.for_fleet(fleet_dir)
    first = start_fleet(fleet_dir)
    first.wait_loaded({"demo-A", "demo-B"})
    served = {loc: first.commit(loc) for loc in ("demo-A", "demo-B")}
    assert all(served.values())
    assert fleet_running(layout)

    first.stop()
    assert not fleet_running(layout)
    for loc, sha in served.items():
        status = json.loads((first.state / "status" / f"{loc}.json").read_text())
        ready = next(c for c in status["conditions"] if c["type"] == "Ready")
        assert ready["status"] == "False" and ready["reason"] == "FleetStopped", status
        assert "start it with `dagfleet up`" in ready["message"]
        assert status["commit"] == status["last_good_commit"] == sha
        assert status["pid"] is None

    second = start_fleet(fleet_dir)
    second.wait_loaded({"demo-A", "demo-B"})
    for loc, sha in served.items():
        wait_for(
            lambda loc=loc: second.condition(loc, "Ready").get("status") == "True",
            60,
            f"{loc} Ready again",
        )
        assert second.commit(loc) == sha
