"""Scenario: one `dagfleet up` per fleet. A second one is refused (exit 2, naming the
directory and the running pid) without disturbing the first; after the first is
killed with -9, nothing wrote its statuses, but `fleet_running` says it is gone."""

from __future__ import annotations

import subprocess
from pathlib import Path

from dagfleet.layout import Layout
from dagfleet.status import StatusStore
from dagfleet.status.liveness import as_stopped, fleet_running
from tests.e2e.conftest import demo_fleet
from tests.support.fleetproc import DAGFLEET, free_port
from tests.support.gitrepo import CodeRepo


def test_second_up_refused_then_kill9_detected(
    tmp_path: Path, code_repo: CodeRepo, start_fleet
) -> None:
    fleet_dir = demo_fleet(tmp_path, code_repo)
    layout = Layout.for_fleet(fleet_dir)
    first = start_fleet(fleet_dir)
    first.wait_loaded({"demo-A", "demo-B"})
    assert first.proc is not None
    assert fleet_running(layout)

    second = subprocess.run(
        [
            DAGFLEET,
            "up",
            "--fleet",
            str(fleet_dir),
            "--port",
            str(free_port()),
            "--api-port",
            str(free_port()),
            "--no-daemon",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert second.returncode == 2, second.stderr
    said = " ".join(second.stderr.split())
    assert "already running" in said and str(fleet_dir.resolve()) in said
    assert f"pid {first.proc.pid}" in said
    # The refused `up` stopped nothing of the first's: it still serves both locations.
    assert first.proc.poll() is None
    assert {"demo-A", "demo-B"} <= first.gql.loaded_locations()
    assert first.condition("demo-A", "Ready").get("status") == "True"

    first.kill9()
    first.force_cleanup()  # the children a kill -9 orphans
    assert not fleet_running(layout)
    # Nothing wrote the statuses: they still say Ready; readers apply as_stopped.
    stale = StatusStore(layout.status).read("demo-A")
    assert stale is not None and stale.ready
    shown = as_stopped(stale)
    assert not shown.ready and shown.commit == stale.commit
