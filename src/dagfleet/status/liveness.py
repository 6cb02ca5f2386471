"""Is `dagfleet up` running for this fleet? The fleet lock, and status as a stopped fleet.

`dagfleet up` holds an exclusive flock on `.dagfleet/fleet.lock` for its whole
life; the kernel drops it when the process dies, however it dies (kill -9
included), so a reader probes the lock instead of trusting PIDs in status files.
A clean stop writes every location `as_stopped`; after a kill -9 nothing was
written, and readers that find no running fleet show `as_stopped` themselves.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from dagfleet.layout import Layout
from dagfleet.status.conditions import (
    ConditionType,
    LocationStatus,
    Reason,
    derive_ready,
    now,
)

LOCK_FILE = "fleet.lock"


def lock_path(layout: Layout) -> Path:
    return layout.root / LOCK_FILE


class FleetAlreadyRunning(Exception):
    """Another `dagfleet up` holds this fleet's lock; the message names it and the fix."""

    def __init__(self, directory: Path, pid: int | None) -> None:
        self.directory = directory
        self.pid = pid
        who = f" (pid {pid})" if pid is not None else ""
        super().__init__(
            f"a dagfleet is already running for {directory}{who}: stop it first "
            "(Ctrl-C in its terminal, or kill it), or use that one"
        )


def _recorded_pid(path: Path) -> int | None:
    with contextlib.suppress(OSError, ValueError):
        return int(path.read_text().strip())
    return None


class FleetLock:
    """The exclusive lock of one running fleet; `release` (or the process's death) frees it."""

    def __init__(self, fd: int, path: Path) -> None:
        self._fd: int | None = fd
        self.path = path

    @classmethod
    def acquire(cls, layout: Layout, directory: Path) -> FleetLock:
        """Take the lock without waiting; FleetAlreadyRunning when another `up` has it."""
        path = lock_path(layout)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise FleetAlreadyRunning(directory, _recorded_pid(path)) from None
        # Who holds it, for the refusal above; the lock, not this number, decides.
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        return cls(fd, path)

    def release(self) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, 0)
        os.close(self._fd)  # closing drops the flock
        self._fd = None


def fleet_running(layout: Layout) -> bool:
    """True while a `dagfleet up` holds this fleet's lock (a non-blocking probe)."""
    try:
        fd = os.open(lock_path(layout), os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # also drops the probe's own shared lock
    return False


def stopped_message(at: str) -> str:
    return f"the fleet stopped at {at}: start it with `dagfleet up`"


def as_stopped(status: LocationStatus, at: str | None = None) -> LocationStatus:
    """The status of a location whose fleet is not running (pure).

    Serving turns False with reason FleetStopped, so Ready does too; the commit
    and last good commit stay, so users still see what was last served. The
    PID is dropped: that process is gone (or no longer dagfleet's), and so is a
    publish that was in progress (`progressing_commit`).
    """
    serving = status.condition(ConditionType.SERVING)
    if serving is not None and serving.reason == Reason.FLEET_STOPPED:
        return status.model_copy(update={"pid": None, "progressing_commit": None})
    message = stopped_message(at or now())
    stopped = status.with_condition(ConditionType.SERVING, "False", Reason.FLEET_STOPPED, message)
    return stopped.model_copy(update={"pid": None, "debug_port": None, "progressing_commit": None})


def as_started(status: LocationStatus) -> LocationStatus:
    """Undo `as_stopped` when the fleet starts again: the location is Progressing until
    its loop serves (or fails), instead of still saying the fleet is stopped (pure)."""
    serving = status.condition(ConditionType.SERVING)
    if serving is None or serving.reason != Reason.FLEET_STOPPED:
        return status
    drop = (ConditionType.SERVING, ConditionType.READY)
    rest = [c for c in status.conditions if c.type not in drop]
    return status.model_copy(update={"conditions": [*rest, derive_ready(rest)]})
