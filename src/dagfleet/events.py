"""What happened in the fleet, as records others subscribe to: history, alerts, pages.

The reconcile loops publish; subscribers (the publish history, alert policies)
must return at once, queueing anything slow, because publishing happens on the
loops' threads and must never hold up a sync. A subscriber that raises is
logged and skipped, never allowed to break the loop that published.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

log = logging.getLogger(__name__)


class Outcome(StrEnum):
    PUBLISHED = "published"  # a new commit went live
    UNCHANGED = "unchanged"  # the branch still names the live commit
    FAILED = "failed"  # the commit was rejected (or a transient failure; see `transient`)
    CANCELLED = "cancelled"  # dagfleet stopped during the attempt


@dataclass(frozen=True)
class Attempt:
    """One sync of one location: which commit, each step's seconds, and how it ended."""

    location: str
    repo: str
    env: str
    commit: str | None
    previous: str | None
    started: str  # ISO 8601, UTC
    finished: str
    outcome: Outcome
    steps: tuple[tuple[str, float], ...] = ()
    reason: str | None = None
    message: str | None = None
    transient: bool = False
    author: str | None = None
    subject: str | None = None
    forced: bool = False

    @property
    def seconds(self) -> float:
        return round(sum(s for _, s in self.steps), 3)


class Kind(StrEnum):
    # From the reconcile loops.
    ATTEMPT = "attempt"  # every Attempt, as `attempt`
    CRASHED = "crashed"  # a live code server exited or stopped answering
    RECOVERED = "recovered"  # ... and its restart serves again
    PROMOTED = "promoted"  # a promotion pushed a commit to a branch
    # From the instance watcher (runs, ticks, the daemon); `data` carries run_id, job,
    # tags as JSON, tick name and type, as each kind needs.
    RUN_STARTED = "run_started"  # the alert engine times it against "longer than N minutes"
    RUN_FAILED = "run_failed"
    RUN_CANCELED = "run_canceled"
    RUN_SUCCEEDED = "run_succeeded"  # ends a run's episode; resolves RUN_FAILED for its job
    TICK_FAILED = "tick_failed"
    TICK_SUCCEEDED = "tick_succeeded"  # resolves TICK_FAILED for the same schedule/sensor
    DAEMON_DOWN = "daemon_down"
    DAEMON_UP = "daemon_up"


@dataclass(frozen=True)
class Event:
    kind: Kind
    location: str
    repo: str
    env: str
    commit: str | None = None
    message: str = ""
    attempt: Attempt | None = None
    data: dict[str, str] = field(default_factory=dict)


Subscriber = Callable[[Event], None]


class EventBus:
    """Fan-out of events to subscribers, in the order they subscribed."""

    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []
        self._lock = threading.Lock()

    def subscribe(self, subscriber: Subscriber) -> None:
        with self._lock:
            self._subscribers.append(subscriber)

    def publish(self, event: Event) -> None:
        with self._lock:
            subscribers = list(self._subscribers)
        for subscriber in subscribers:
            try:
                subscriber(event)
            except Exception:
                log.exception("an event subscriber failed on %s %s", event.kind, event.location)
