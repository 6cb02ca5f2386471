"""The reaper: `python -m dagfleet.runtime.reaper <fd> <pids dir> <marker> <lock>`.

Started by `PidRegistry.guard` in its own session. It blocks reading a pipe
whose write end only `dagfleet up` holds. A clean stop writes `DISARM` first
(`PidRegistry.disarm`): the reaper exits and touches nothing. A bare EOF means
`up` died without stopping its children (kill -9, a crash): the reaper takes
the fleet lock, stops whatever the fleet left (`processes.reap`), and exits.
If the lock is taken, a new `up` already owns the fleet and has stopped the
orphans itself (`PidRegistry.kill_orphans`), so the reaper leaves it alone.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

from dagfleet.runtime.processes import DISARM, reap
from dagfleet.status.liveness import FleetLock


def _read_until_eof(fd: int) -> bytes:
    said = b""
    while True:
        try:
            chunk = os.read(fd, 4096)
        except InterruptedError:
            continue
        except OSError:
            return said
        if not chunk:
            return said
        said += chunk


def main(argv: list[str]) -> int:
    if len(argv) != 4:
        usage = "usage: python -m dagfleet.runtime.reaper <fd> <pids dir> <marker> <lock file>"
        print(usage, file=sys.stderr)
        return 2
    fd, directory, marker, lock_file = int(argv[0]), Path(argv[1]), argv[2], Path(argv[3])
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if _read_until_eof(fd) == DISARM:
        return 0
    # The kernel drops the dead owner's flock while it closes its files, perhaps a
    # moment after the pipe: wait briefly before deciding a new `up` holds it.
    lock = FleetLock.try_path(lock_file)
    deadline = time.monotonic() + 1.0
    while lock is None and time.monotonic() < deadline:
        time.sleep(0.05)
        lock = FleetLock.try_path(lock_file)
    if lock is None:
        return 0
    try:
        found = reap(directory, marker)
    finally:
        lock.release()
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
    print(f"{stamp} dagfleet ended without stopping: stopped {found} processes", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
