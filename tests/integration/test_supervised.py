"""The webserver and daemon supervisor: a child that dies is started again, and the
PID registry names exactly the children that are running."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import psutil

from dagfleet.runtime.central import Supervised
from dagfleet.runtime.processes import PidRegistry
from tests.support.fleetproc import wait_for


def registered(tmp_path: Path) -> list[str]:
    return sorted(p.name for p in (tmp_path / "pids").iterdir())


def test_a_killed_child_is_restarted_and_stop_leaves_nothing(tmp_path: Path) -> None:
    pids = PidRegistry(tmp_path / "pids", marker="test")
    child = Supervised(
        "sleeper",
        lambda: [sys.executable, "-c", "import time; time.sleep(600)"],
        cwd=tmp_path,
        env=dict(os.environ),
        log_path=tmp_path / "sleeper.log",
        pids=pids,
    )
    child.start()
    try:
        assert child.child is not None
        first = child.child.pid
        os.kill(first, signal.SIGKILL)
        # The first restart after a crash is immediate (the watcher polls every 0.5 s).
        wait_for(lambda: child.child is not None and child.child.pid != first, 5, "a restart")
        second = child.child.pid
        assert child.restarts == 1
        assert psutil.Process(second).is_running()
        wait_for(lambda: registered(tmp_path) == [str(second)], 5, "the new child registered")
    finally:
        child.stop(grace=2.0)
    assert not psutil.pid_exists(second) or psutil.Process(second).status() == "zombie"
    assert registered(tmp_path) == []
    assert "starting sleeper" in (tmp_path / "sleeper.log").read_text()
