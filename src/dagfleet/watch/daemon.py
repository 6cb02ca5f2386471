"""The daemon's liveness, from its heartbeats: DAEMON_DOWN, then DAEMON_UP.

Every daemon loop (scheduler, sensors, backfills, the run queue) writes a
heartbeat to the instance every 30 seconds. The daemon is down when the newest
heartbeat of any loop is older than the tolerance (90 s by default: three missed
beats), or when none came within the tolerance of the daemon being expected.
Only a change is published; a daemon that is up when the watcher starts says
nothing.
"""

from __future__ import annotations

from dagfleet.events import Event, Kind
from dagfleet.watch.runs import iso

TOLERANCE = 90.0


class DaemonTracker:
    def __init__(self, tolerance: float = TOLERANCE) -> None:
        self.tolerance = tolerance
        self.up: bool | None = None  # None: not known yet
        self._expected_since: float | None = None

    def event(self, now: float, expected: bool, newest: float | None) -> Event | None:
        """The event the newest heartbeat calls for at `now` (seconds since the epoch)."""
        if not expected:
            self._expected_since = None
            self.up = None
            return None
        if self._expected_since is None:
            self._expected_since = now
        fresh = newest is not None and now - newest <= self.tolerance
        if fresh:
            was, self.up = self.up, True
            if was is False:
                return _event(Kind.DAEMON_UP, "the dagster daemon is up again", newest)
            return None
        waited = now - self._expected_since
        if self.up is False or (self.up is None and waited <= self.tolerance):
            return None
        self.up = False
        return _event(Kind.DAEMON_DOWN, "the dagster daemon stopped sending heartbeats", newest)


def _event(kind: Kind, message: str, newest: float | None) -> Event:
    last = iso(newest)
    if last and kind is Kind.DAEMON_DOWN:
        message += f" (last heartbeat {last})"
    return Event(
        kind=kind,
        location="",
        repo="",
        env="",
        message=message,
        data={"last_heartbeat": last},
    )
