"""Start and stop child processes so that nothing outlives dagfleet.

Each child gets its own process group. Stopping sends SIGTERM to the group,
waits a grace period, then SIGKILLs the group: `dagster code-server start` and
the webserver leave grandchildren that ignore a polite signal for a long time.

A kill -9 of `dagfleet up` runs none of that, so `PidRegistry.guard` starts a
reaper (`dagfleet.runtime.reaper`) that outlives it by a moment: it waits on a
pipe only `up` holds open, and when the pipe closes (however `up` ended) it
stops every registered group and every process carrying this fleet's
DAGFLEET_STATE (grandchildren in sessions of their own: debug adapters, uv).
Why not PR_SET_PDEATHSIG in each child: it fires when the *thread* that forked
dies (children here are started from loop, supervisor and request threads), it
reaches the child only, not its run workers and step processes, and it is
Linux-only; one watcher per fleet has none of those problems.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import psutil

from dagfleet.procgroup import kill_group

DEFAULT_GRACE = 10.0


class Proc(Protocol):
    """What dagfleet needs of a child: `subprocess.Popen`, or a process a warm parent
    forked (dagfleet.runtime.warm.ForkedProcess)."""

    @property
    def pid(self) -> int: ...

    @property
    def returncode(self) -> int | None: ...

    def poll(self) -> int | None: ...

    def wait(self, timeout: float | None = None) -> int: ...


@dataclass
class Child:
    name: str
    proc: Proc

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


def stop_group(proc: Proc, grace: float = DEFAULT_GRACE) -> int | None:
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


DISARM = b"disarm\n"


def since_boot() -> float:
    """Seconds since boot on the clock the kernel stamps process starts with (Linux:
    CLOCK_BOOTTIME). Wall time would not do: psutil's start times rest on a boot time
    rounded to the second."""
    clock = getattr(time, "CLOCK_BOOTTIME", None)
    if clock is None:  # not Linux: wall time less psutil's boot time, good to a second
        return time.time() - psutil.boot_time()
    return time.clock_gettime(clock)


def _born(proc: psutil.Process) -> float:
    """When `proc` started, in `since_boot` seconds."""
    return float(proc.create_time() - psutil.boot_time())


def marked_processes(marker: str, born_before: float | None = None) -> list[psutil.Process]:
    """Every live process (but this one) whose initial environment names `marker` as its
    DAGFLEET_STATE: children, and grandchildren that inherited it in a session of their own.
    With `born_before` (a `since_boot()`), only those started before then."""
    found: list[psutil.Process] = []
    me = os.getpid()
    for proc in psutil.process_iter(["pid"]):
        with contextlib.suppress(psutil.Error):
            if proc.pid == me or proc.environ().get("DAGFLEET_STATE") != marker:
                continue
            if born_before is None or _born(proc) <= born_before:
                found.append(proc)
    return found


def _signal_all(groups: set[int], procs: list[psutil.Process], sig: int) -> None:
    for pgid in groups:
        kill_group(pgid, sig)
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            proc.send_signal(sig)  # psutil checks the pid was not reused meanwhile


def reap(directory: Path, marker: str, born_before: float, grace: float = 3.0) -> int:
    """Stop everything a dead dagfleet left: its registered groups and every process
    marked with its state that was started before `born_before` (when the owner was seen
    dead; a new `up` on the same fleet can only start children after that, and those are
    left alone). SIGTERM all at once, wait up to `grace`, SIGKILL the rest.
    Returns how many processes were found."""
    groups: set[int] = set()
    if directory.is_dir():
        for entry in directory.iterdir():
            if not entry.name.isdigit():
                continue
            with contextlib.suppress(psutil.Error, ProcessLookupError):
                proc = psutil.Process(int(entry.name))
                ours = proc.environ().get("DAGFLEET_STATE") == marker
                if (ours or marker in " ".join(proc.cmdline())) and (_born(proc) <= born_before):
                    groups.add(os.getpgid(proc.pid))
            entry.unlink(missing_ok=True)
    procs = marked_processes(marker, born_before)
    # A group is only signalled when its leader was checked to be the dead owner's above.
    _signal_all(groups, procs, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(_running(p) for p in procs):
        time.sleep(0.1)
    _signal_all(groups, procs, signal.SIGKILL)
    return len(procs)


def _running(proc: psutil.Process) -> bool:
    with contextlib.suppress(psutil.Error):
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    return False


class PidRegistry:
    """PIDs of the processes this dagfleet started, one empty file each.

    Survives a kill -9 of dagfleet so that the next start can stop the orphans.
    """

    def __init__(self, directory: Path, marker: str) -> None:
        self.directory = directory
        self.marker = marker
        self._guard_fd: int | None = None
        self._reaper: subprocess.Popen[bytes] | None = None

    def guard(self, log: Path) -> None:
        """Start this fleet's reaper: when this process dies (kill -9 included) without
        `disarm`, its children and their descendants are stopped within seconds (module
        docstring). Call once, from the process that owns the children; it holds the
        pipe's write end."""
        if self._reaper is not None:
            return
        read_fd, write_fd = os.pipe()  # both close-on-exec: no child inherits the write end
        log.parent.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if k != "DAGFLEET_STATE"}
        with open(log, "ab", buffering=0) as out:
            self._reaper = subprocess.Popen(
                [
                    *(sys.executable, "-m", "dagfleet.runtime.reaper"),
                    *(str(read_fd), str(self.directory), self.marker),
                ],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                pass_fds=(read_fd,),
                start_new_session=True,  # a Ctrl-C to the terminal's group is not for it
                env=env,
            )
        os.close(read_fd)
        self._guard_fd = write_fd

    def disarm(self) -> None:
        """A clean stop is over (every child stopped): tell the reaper to exit without
        reaping, so that it cannot touch the children of the next `up`."""
        fd, self._guard_fd = self._guard_fd, None
        if fd is None:
            return
        with contextlib.suppress(OSError):
            os.write(fd, DISARM)
        os.close(fd)
        if self._reaper is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._reaper.wait(5)
            self._reaper = None

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
