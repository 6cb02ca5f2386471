"""The instance watcher: a thread that polls the central instance and publishes events.

Each poll (about once a second) reads:
- runs updated since the last poll (`RunsFilter(updated_after=...)`, ordered by
  update time, with a few seconds of overlap for writes that commit late), which
  `RunTracker` turns into RUN_STARTED / RUN_SUCCEEDED / RUN_FAILED / RUN_CANCELED;
- ticks by id (`TickTracker`): TICK_FAILED / TICK_SUCCEEDED;
- the newest daemon heartbeat (`DaemonTracker`), while the fleet runs a daemon.

The first poll only remembers: runs, ticks and heartbeats from before the watcher
started are history, not news. A poll that fails (the database restarting) is
logged and retried at the next poll; the cursors stay where they were.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from dagster import DagsterInstance, DagsterRunStatus, RunsFilter
from dagster._core.storage.schedules.sql_schedule_storage import SqlScheduleStorage

from dagfleet.events import Event, EventBus
from dagfleet.spec import Fleet
from dagfleet.watch.daemon import TOLERANCE, DaemonTracker
from dagfleet.watch.runs import Resolve, RunTracker
from dagfleet.watch.ticks import TickReader, TickTracker

log = logging.getLogger(__name__)

INTERVAL = 1.0
OVERLAP = timedelta(seconds=5)  # re-read runs updated this long before the cursor
BATCH = 500
UNFINISHED = [
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
    DagsterRunStatus.CANCELING,
]


def resolver(fleet: Callable[[], Fleet]) -> Resolve:
    """location -> (repo, env) from the fleet as it is now (repos come and go)."""

    def resolve(location: str) -> tuple[str, str]:
        for loc in fleet().locations():
            if loc.name == location:
                return loc.repo, loc.env
        return "", ""

    return resolve


class InstanceWatcher:
    """Watches the instance in `dagster_home` and publishes on `bus`.

    `resolve` maps a location name to (repo, env) for runs without dagfleet's
    tags; `daemon_expected` says whether the fleet runs a daemon right now.
    """

    def __init__(
        self,
        dagster_home: Path,
        bus: EventBus,
        resolve: Resolve,
        daemon_expected: Callable[[], bool] = lambda: False,
        interval: float = INTERVAL,
        daemon_tolerance: float | None = None,
    ) -> None:
        self.home = dagster_home
        self.bus = bus
        self.resolve = resolve
        self.daemon_expected = daemon_expected
        self.interval = interval
        self.runs = RunTracker(resolve)
        self.ticks = TickTracker(self._where)
        self.daemon = DaemonTracker(daemon_tolerance or TOLERANCE)
        self._instance: DagsterInstance | None = None
        self._reader: TickReader | None = None
        self._run_cursor: datetime | None = None
        self._selectors: dict[str, str] = {}  # selector id -> location
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.polls = 0

    # ---- lifecycle ---------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="instance-watcher", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        if self._instance is not None:
            self._instance.dispose()
            self._instance = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll()
            except Exception as exc:  # the database restarting must not end the watcher
                log.warning("watching the instance failed (retrying): %s", exc)
            self._stop.wait(self.interval)

    # ---- one poll ----------------------------------------------------------------------
    def _open(self) -> DagsterInstance:
        if self._instance is None:
            self._instance = DagsterInstance.from_config(str(self.home))
            storage = self._instance.schedule_storage
            if isinstance(storage, SqlScheduleStorage):
                self._reader = TickReader(storage)
            else:
                log.warning("the instance's schedule storage is not SQL: ticks are not watched")
        return self._instance

    def poll(self) -> None:
        """One pass; the first one remembers what it sees and publishes nothing."""
        instance = self._open()
        first = self._run_cursor is None
        if first:
            self._seed(instance)
        else:
            for event in self._run_events(instance) + self._tick_events():
                self._publish(event)
        expected = self.daemon_expected()
        heartbeats = instance.get_daemon_heartbeats() if expected else {}
        newest = max((h.timestamp for h in heartbeats.values()), default=None)
        daemon_event = self.daemon.event(time.time(), expected, newest)
        if daemon_event is not None:
            self._publish(daemon_event)
        self.polls += 1

    def _publish(self, event: Event) -> None:
        log.info("%s %s: %s", event.kind, event.location or "-", event.message)
        self.bus.publish(event)

    def _seed(self, instance: DagsterInstance) -> None:
        now = datetime.now(UTC)
        recent = instance.get_run_records(
            filters=RunsFilter(updated_after=now - OVERLAP), limit=BATCH
        )
        running = instance.get_run_records(filters=RunsFilter(statuses=UNFINISHED), limit=BATCH)
        self.runs.seed([*running, *recent])
        self._run_cursor = now
        if self._reader is not None:
            self.ticks.cursor = self._reader.last_id()

    def _run_events(self, instance: DagsterInstance) -> list[Event]:
        """Runs updated since the cursor (less the overlap), page by page."""
        assert self._run_cursor is not None
        events: list[Event] = []
        after = self._run_cursor - OVERLAP
        while True:
            records = instance.get_run_records(
                filters=RunsFilter(updated_after=after),
                order_by="update_timestamp",
                ascending=True,
                limit=BATCH,
            )
            events.extend(self.runs.events(records))
            if not records:
                return events
            newest = max(r.update_timestamp for r in records)
            self._run_cursor = max(self._run_cursor, newest)
            if len(records) < BATCH:
                return events
            after = newest  # a full page: the next one starts after its newest

    def _tick_events(self) -> list[Event]:
        if self._reader is None:
            return []
        ticks = self._reader.by_ids(sorted(self.ticks.open))
        ticks += self._reader.after(self.ticks.cursor)
        return self.ticks.events(ticks)

    def _where(self, selector_id: str) -> tuple[str, str, str]:
        """A schedule or sensor's location, repo and env, from its instigator state."""
        if selector_id not in self._selectors and self._instance is not None:
            for state in self._instance.all_instigator_state():
                origin = state.origin.repository_origin.code_location_origin
                self._selectors[state.selector_id] = origin.location_name
            self._selectors.setdefault(selector_id, "")  # unknown: do not ask again
        location = self._selectors.get(selector_id, "")
        repo, env = self.resolve(location) if location else ("", "")
        return location, repo, env
