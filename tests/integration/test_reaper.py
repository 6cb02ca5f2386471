"""The reaper (runtime/reaper.py): a process that guards its PidRegistry and dies with
kill -9 takes its children along, grandchildren in sessions of their own included;
one that disarms first (a clean stop) leaves the reaper nothing to do."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from dagfleet.runtime.processes import reap, since_boot
from tests.support.fleetproc import dagfleet_processes, wait_for

OWNER = textwrap.dedent(
    """
    import os, subprocess, sys, time
    from pathlib import Path
    from dagfleet.runtime.processes import PidRegistry, spawn

    state, disarm = Path(sys.argv[1]), sys.argv[2] == "disarm"
    pids = PidRegistry(state / "pids", marker=str(state))
    pids.guard(state / "logs" / "reaper.log")
    env = {**os.environ, "DAGFLEET_STATE": str(state)}
    # A child whose own child sits in a session of its own (like a debug adapter).
    child = spawn("sleeper", [sys.executable, "-c",
        "import subprocess, sys, time; subprocess.Popen(['sleep', '300'],"
        " start_new_session=True); time.sleep(300)"],
        cwd=state, env=env, log=state / "logs" / "sleeper.log")
    pids.add(child.pid)
    if disarm:
        pids.disarm()
    print("ready", flush=True)
    time.sleep(300)
    """
)


@pytest.fixture
def state(tmp_path: Path) -> Iterator[Path]:
    root = tmp_path / ".dagfleet"
    root.mkdir()
    yield root
    for proc in dagfleet_processes(root):
        with contextlib.suppress(OSError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(psutil.Error):
            proc.kill()


def _owner(state: Path, mode: str) -> subprocess.Popen[str]:
    owner = subprocess.Popen(
        [sys.executable, "-c", OWNER, str(state), mode], stdout=subprocess.PIPE, text=True
    )
    assert owner.stdout is not None
    assert owner.stdout.readline().strip() == "ready"
    # The sleeper and its grandchild both carry the state marker.
    wait_for(lambda: len(dagfleet_processes(state)) >= 2, 60, "sleeper and its grandchild")
    return owner


def test_kill9_of_the_owner_stops_children_and_grandchildren(state: Path) -> None:
    owner = _owner(state, "keep")
    children = dagfleet_processes(state)
    owner.send_signal(signal.SIGKILL)
    owner.wait(5)
    started = time.monotonic()
    wait_for(lambda: not dagfleet_processes(state), 60, "the orphans stopped")
    print(f"orphans stopped {time.monotonic() - started:.1f} s after the kill")

    def alive(p: psutil.Process) -> bool:
        try:
            return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False

    # A killed process may still be running for a moment before it becomes a zombie.
    wait_for(lambda: not any(alive(p) for p in children), 60, "every child gone")
    wait_for(lambda: not list((state / "pids").iterdir()), 30, "the pid files removed")
    said = state / "logs" / "reaper.log"
    wait_for(lambda: "stopped 2 processes" in said.read_text(), 30, "the reaper's log line")


def test_a_disarmed_reaper_touches_nothing(state: Path) -> None:
    owner = _owner(state, "disarm")
    owner.send_signal(signal.SIGKILL)
    owner.wait(5)
    time.sleep(2.0)
    # Disarmed (the owner said it stopped cleanly): what still runs is not the reaper's.
    assert len(dagfleet_processes(state)) >= 2


def test_reap_leaves_processes_born_after_the_owner_died(state: Path) -> None:
    # A new `up` may start the moment the old one dies: what it starts is born after
    # the reaper saw the death, and must survive the reap of the old one's orphans.
    owner = _owner(state, "disarm")  # no reaper of its own: we reap by hand
    orphans = dagfleet_processes(state)
    owner.send_signal(signal.SIGKILL)
    owner.wait(5)
    died = since_boot()
    time.sleep(0.05)
    env = {**os.environ, "DAGFLEET_STATE": str(state)}
    newer = subprocess.Popen(["sleep", "60"], env=env, start_new_session=True)
    try:
        assert reap(state / "pids", str(state), born_before=died, grace=1.0) == len(orphans)
        assert newer.poll() is None
        assert not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in orphans)
    finally:
        newer.kill()
        newer.wait(5)
