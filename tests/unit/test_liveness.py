"""The fleet lock and the status of a stopped fleet (status.liveness)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from dagfleet.layout import Layout
from dagfleet.status import LocationStatus, Reason
from dagfleet.status.liveness import (
    FleetAlreadyRunning,
    FleetLock,
    as_started,
    as_stopped,
    fleet_running,
    lock_path,
)

pytestmark = pytest.mark.unit
AT = "2030-01-02T03:04:05+00:00"


def serving(sha: str = "a" * 40) -> LocationStatus:
    s = LocationStatus(location="sales-A", repo="sales", env="A", commit=sha, pid=4242)
    s = s.model_copy(update={"last_good_commit": sha, "debug_port": 5678})
    s = s.with_condition("Serving", "True", Reason.CODE_SERVER_RUNNING, f"serving {sha}")
    return s.with_condition("Synced", "True", Reason.PUBLISHED, f"serving {sha}")


def test_a_stopped_fleet_is_not_ready_and_keeps_what_it_served() -> None:
    before = serving()
    assert before.ready
    after = as_stopped(before, AT)
    ready = after.condition("Ready")
    assert ready is not None and ready.status == "False" and ready.reason == "FleetStopped"
    assert AT in ready.message and "dagfleet up" in ready.message
    assert after.commit == after.last_good_commit == "a" * 40
    assert after.pid is None and after.debug_port is None
    assert as_stopped(after, "2040-01-01T00:00:00+00:00") == after  # stopping twice: no change


def test_stopped_wins_over_a_failed_sync_but_not_over_suspension() -> None:
    failed = serving().with_condition("Synced", "False", Reason.BUILD_FAILED, "b: exit 1")
    ready = as_stopped(failed, AT).condition("Ready")
    assert ready is not None and ready.reason == "FleetStopped"
    suspended = serving().with_condition("Suspended", "True", Reason.SUSPENDED, "")
    ready = as_stopped(suspended, AT).condition("Ready")
    assert ready is not None and ready.reason == "Suspended"


def test_starting_again_forgets_the_stop() -> None:
    stopped = as_stopped(serving(), AT)
    started = as_started(stopped)
    assert started.condition("Serving") is None
    ready = started.condition("Ready")
    assert ready is not None and ready.status == "Unknown" and ready.reason == "Progressing"
    synced = started.condition("Synced")
    assert synced is not None and synced.status == "True"
    live = serving()
    assert as_started(live) is live  # nothing to undo


def test_the_lock_is_held_until_released(tmp_path: Path) -> None:
    layout = Layout.for_fleet(tmp_path)
    assert not fleet_running(layout)  # no lock file yet
    lock = FleetLock.acquire(layout, tmp_path)
    try:
        assert fleet_running(layout)
        assert lock_path(layout).read_text().strip() == str(os.getpid())
        with pytest.raises(FleetAlreadyRunning) as err:
            FleetLock.acquire(layout, tmp_path)
        assert str(tmp_path) in str(err.value) and f"pid {os.getpid()}" in str(err.value)
    finally:
        lock.release()
    assert not fleet_running(layout)
    FleetLock.acquire(layout, tmp_path).release()  # free again


def test_a_killed_holder_frees_the_lock(tmp_path: Path) -> None:
    """The kernel drops the flock with the process: kill -9 leaves no stale lock."""
    layout = Layout.for_fleet(tmp_path)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, pathlib\n"
            "from dagfleet.layout import Layout\n"
            "from dagfleet.status.liveness import FleetLock\n"
            f"FleetLock.acquire(Layout.for_fleet(pathlib.Path({str(tmp_path)!r})), "
            "pathlib.Path('.'))\n"
            "print('held', flush=True)\n"
            "sys.stdin.read()\n",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        assert fleet_running(layout)
        with pytest.raises(FleetAlreadyRunning) as err:
            FleetLock.acquire(layout, tmp_path)
        assert err.value.pid == holder.pid
    finally:
        holder.kill()
        holder.wait(10)
    assert not fleet_running(layout)
