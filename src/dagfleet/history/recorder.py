"""Attempts from the EventBus into the store, on the recorder's own thread.

The bus calls `__call__` on a location loop's thread, so it only queues. The
writer thread takes whatever is queued and writes it in one transaction. When
the database does not answer (PostgreSQL restarting), the batch stays queued
and is tried again with backoff; the queue is bounded, and the oldest attempts
are the ones dropped (and logged) if it ever fills.
"""

from __future__ import annotations

import collections
import logging
import threading
import time

from dagfleet.events import Event, Kind, Outcome
from dagfleet.history.models import PublishAttempt
from dagfleet.history.store import HistoryStore

log = logging.getLogger(__name__)

MAX_QUEUED = 10_000
RETRY_FIRST, RETRY_MAX = 1.0, 30.0
STOP_RETRY = 0.2  # seconds between tries of the last writes while closing


class HistoryRecorder:
    """An EventBus subscriber keeping every sync attempt (not the polls that found nothing)."""

    def __init__(self, store: HistoryStore, fleet: str) -> None:
        self.store = store
        self.fleet = fleet
        self._queue: collections.deque[PublishAttempt] = collections.deque()
        self._wake = threading.Condition()
        self._stopping = False
        self._dropped = 0
        self._inflight = 0  # queued attempts the writer is writing now (the oldest ones)
        self._deadline = float("inf")  # when closing: stop retrying failed writes then
        self._thread = threading.Thread(target=self._run, name="history-recorder", daemon=True)

    def start(self) -> HistoryRecorder:
        self._thread.start()
        return self

    def __call__(self, event: Event) -> None:
        attempt = event.attempt
        if event.kind != Kind.ATTEMPT or attempt is None or attempt.outcome == Outcome.UNCHANGED:
            return
        with self._wake:
            if len(self._queue) >= MAX_QUEUED:
                self._queue.popleft()
                self._dropped += 1
                self._inflight = max(0, self._inflight - 1)
            self._queue.append(PublishAttempt.of(attempt))
            self._wake.notify()

    def _take(self) -> list[PublishAttempt]:
        with self._wake:
            while not self._queue and not self._stopping:
                self._wake.wait()
            self._inflight = len(self._queue)
            return list(self._queue)

    def _run(self) -> None:
        delay = RETRY_FIRST
        while True:
            batch = self._take()
            if not batch:
                return  # stopping, and everything was written
            try:
                self.store.add(self.fleet, batch)
            except Exception as exc:
                log.warning(
                    "publish history: writing %d attempt(s) to %s failed (retrying in %.0f s): %s",
                    len(batch),
                    self.store.where(),
                    delay,
                    exc,
                )
                with self._wake:
                    if self._stopping:
                        # Closing: keep trying, briefly, until close() stops waiting.
                        if time.monotonic() >= self._deadline:
                            return
                        self._wake.wait(STOP_RETRY)
                        continue
                    self._wake.wait(delay)
                delay = min(delay * 2, RETRY_MAX)
                continue
            delay = RETRY_FIRST
            with self._wake:
                for _ in range(self._inflight):
                    self._queue.popleft()
                self._inflight = 0
                if self._dropped:
                    log.warning("publish history: %d attempt(s) dropped", self._dropped)
                    self._dropped = 0

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued (for up to `timeout` seconds), then stop."""
        with self._wake:
            self._stopping = True
            self._deadline = time.monotonic() + timeout
            self._wake.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout)
        with self._wake:
            left = len(self._queue)
        if left:
            log.warning("publish history: %d attempt(s) not written at stop", left)
        self.store.close()
