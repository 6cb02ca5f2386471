"""Attempts from the EventBus into the store, on the recorder's own thread.

The bus calls `__call__` on a location loop's thread, so it only queues. The
writer thread takes whatever is queued and writes it in one transaction. When
the database does not answer (PostgreSQL restarting), the batch stays queued
and is tried again with backoff; the queue is bounded, and the oldest attempts
are the ones dropped (and logged) if it ever fills. The queue, the thread, the
retries and `close` are `queued.QueuedWriter`'s, shared with the audit log.
"""

from __future__ import annotations

from dagfleet.events import Event, Kind, Outcome
from dagfleet.history.models import PublishAttempt
from dagfleet.history.queued import QueuedWriter
from dagfleet.history.store import HistoryStore


class HistoryRecorder(QueuedWriter[PublishAttempt]):
    """An EventBus subscriber keeping every sync attempt (not the polls that found nothing)."""

    store: HistoryStore

    def __init__(self, store: HistoryStore, fleet: str) -> None:
        super().__init__(
            store,
            log_name="publish history",
            items=("attempt", "attempts"),
            thread="history-recorder",
        )
        self.fleet = fleet

    def __call__(self, event: Event) -> None:
        attempt = event.attempt
        if event.kind != Kind.ATTEMPT or attempt is None or attempt.outcome == Outcome.UNCHANGED:
            return
        self._enqueue(PublishAttempt.of(attempt))

    def _write(self, batch: list[PublishAttempt]) -> None:
        self.store.add(self.fleet, batch)
