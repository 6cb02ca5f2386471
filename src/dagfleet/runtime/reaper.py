"""The reaper: `python -m dagfleet.runtime.reaper <fd> <pids dir> <marker>`.

Started by `PidRegistry.guard` in its own session. It blocks reading a pipe
whose write end only `dagfleet up` holds. A clean stop writes `DISARM` first
(`PidRegistry.disarm`): the reaper exits and touches nothing. A bare EOF means
`up` died without stopping its children (kill -9, a crash): the reaper stops
whatever the fleet left (`processes.reap`) and exits. It takes no fleet lock,
so a new `up` can start at once; what that one starts is born after the
reaper saw the death, and `reap` leaves such processes alone.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

from dagfleet.runtime.processes import DISARM, reap, since_boot


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
    if len(argv) != 3:
        print("usage: python -m dagfleet.runtime.reaper <fd> <pids dir> <marker>", file=sys.stderr)
        return 2
    fd, directory, marker = int(argv[0]), Path(argv[1]), argv[2]
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if _read_until_eof(fd) == DISARM:
        return 0
    found = reap(directory, marker, born_before=since_boot())
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
    print(f"{stamp} dagfleet ended without stopping: stopped {found} processes", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
