"""Start and stop child processes so that nothing outlives dagfleet.

Each child gets its own process group. Stopping sends SIGTERM to the group,
waits a grace period, then SIGKILLs the group: `dagster code-server start` and
the webserver leave grandchildren that ignore a polite signal for a long time.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

from dagfleet.procgroup import kill_group

DEFAULT_GRACE = 10.0


@dataclass
class Child:
    name: str
    proc: subprocess.Popen[bytes]

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, grace: float = DEFAULT_GRACE) -> int | None:
        return stop_group(self.proc, grace)


START_MARKER = "--- dagfleet: starting"


def output_since_start(log: Path, lines: int, what: str = "") -> str:
    """The last `lines` lines a process wrote to `log` since `spawn` marked its start
    (the last marker naming `what`); the log's tail when there is no marker."""
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return ""
    marker = text.rfind(f"{START_MARKER} {what}".rstrip())
    if marker < 0:
        return "\n".join(text[-3000:].splitlines()[-lines:])
    return "\n".join(text[marker:].splitlines()[1:][-lines:])


def spawn(
    name: str,
    args: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    log: Path,
) -> Child:
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab", buffering=0) as out:
        out.write(f"\n{START_MARKER} {name}: {' '.join(args)}\n".encode())
        proc = subprocess.Popen(
            list(args),
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Child(name, proc)


def stop_group(proc: subprocess.Popen[bytes], grace: float = DEFAULT_GRACE) -> int | None:
    """SIGTERM the process group, wait up to `grace`, then SIGKILL it; reap the child."""
    if proc.poll() is not None:
        kill_group(proc.pid, signal.SIGKILL)
        return proc.returncode
    kill_group(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=grace)
    kill_group(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)
    return proc.returncode


def kill_stale(pid: int, marker: str) -> bool:
    """Kill a leftover process group from a previous dagfleet if its command names `marker`.

    A kill -9 of dagfleet leaves its children running; the next start cleans up
    by PID, checking the command line so that a reused PID is never hit.
    """
    try:
        proc = psutil.Process(pid)
        cmdline = " ".join(proc.cmdline())
        environ_ok = marker in cmdline
        if not environ_ok:
            with contextlib.suppress(psutil.Error):
                environ_ok = proc.environ().get("DAGFLEET_STATE") == marker
        if not environ_ok:
            return False
        pgid = os.getpgid(pid)
    except (psutil.Error, ProcessLookupError):
        return False
    kill_group(pgid, signal.SIGTERM)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and psutil.pid_exists(pid):
        time.sleep(0.1)
    kill_group(pgid, signal.SIGKILL)
    return True


class PidRegistry:
    """PIDs of the processes this dagfleet started, one empty file each.

    Survives a kill -9 of dagfleet so that the next start can stop the orphans.
    """

    def __init__(self, directory: Path, marker: str) -> None:
        self.directory = directory
        self.marker = marker

    def add(self, pid: int) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / str(pid)).touch()

    def discard(self, pid: int) -> None:
        with contextlib.suppress(FileNotFoundError):
            (self.directory / str(pid)).unlink()

    def kill_orphans(self) -> list[int]:
        killed: list[int] = []
        if not self.directory.is_dir():
            return killed
        for entry in self.directory.iterdir():
            if entry.name.isdigit() and kill_stale(int(entry.name), self.marker):
                killed.append(int(entry.name))
            entry.unlink(missing_ok=True)
        return killed
