"""`QueuedWriter`: items into a database on a thread of their own, so no caller ever waits.

The publish history's recorder and the audit log's writer are both one of these:
callers queue items (never blocking, never waiting on the database) and one daemon
thread writes whatever is queued in one call (`_write`, given by the subclass). When
the database does not answer (PostgreSQL restarting), the batch stays queued and is
tried again with backoff, 1 s doubling to 30 s; new items wake the thread but do not
cut the backoff short. The queue is bounded: if it ever fills, the oldest items are
dropped, counted and logged. `flush` waits until everything queued so far is written;
`close` writes what is queued until its deadline, then stops and closes the store.

Messages name the log (`publish history: ...`, `audit log: ...`) and the database
without its password, from the logger of the subclass's module. This module does not
import SQLAlchemy: the store is anything with `where()` and `close()`.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from typing import Generic, Protocol, Self, TypeVar

MAX_QUEUED = 10_000
RETRY_FIRST, RETRY_MAX = 1.0, 30.0
STOP_RETRY = 0.2  # seconds between tries of the last writes while closing

T = TypeVar("T")


class Destination(Protocol):
    """Where a writer's items go: named in messages, closed when the writer stops."""

    def where(self) -> str: ...

    def close(self) -> None: ...


class QueuedWriter(Generic[T]):
    """A bounded queue in, one thread out; a subclass gives `_write` and its public input.

    `log_name` starts every message ("publish history"); `items` is what the log calls
    one item and several ("attempt", "attempts"); `thread` names the writer's thread.
    """

    def __init__(
        self,
        store: Destination,
        *,
        log_name: str,
        items: tuple[str, str],
        thread: str,
        max_queued: int = MAX_QUEUED,
    ) -> None:
        if max_queued < 1:
            raise ValueError(f"{log_name}: max_queued must be at least 1, not {max_queued}")
        self.store = store
        self.log_name = log_name
        self._items = items
        self._max_queued = max_queued
        self._log = logging.getLogger(type(self).__module__)
        self._queue: collections.deque[T] = collections.deque()
        self._wake = threading.Condition()
        self._stopping = False
        self._dropped = 0
        self._inflight = 0  # queued items the thread is writing now (the oldest ones)
        self._queued = 0  # items queued since start
        self._done = 0  # of those, written or dropped (flush waits for this to catch up)
        self._deadline = float("inf")  # when closing: stop retrying failed writes then
        self._thread = threading.Thread(target=self._run, name=thread, daemon=True)

    @property
    def running(self) -> bool:
        """The thread is writing and `close` has not been called."""
        return self._thread.is_alive() and not self._stopping

    def start(self) -> Self:
        self._thread.start()
        return self

    def _write(self, batch: list[T]) -> None:
        """Write `batch` in one go (all or none); raising leaves it queued for a retry."""
        raise NotImplementedError(f"{type(self).__name__} must define _write")

    def _count(self, n: int) -> str:
        return f"{n} {self._items[0] if n == 1 else self._items[1]}"

    def _enqueue(self, item: T) -> None:
        """Queue `item` for the thread, dropping the oldest one if the queue is full."""
        with self._wake:
            if len(self._queue) >= self._max_queued:
                self._queue.popleft()
                self._dropped += 1
                self._done += 1
                self._inflight = max(0, self._inflight - 1)
            self._queue.append(item)
            self._queued += 1
            self._wake.notify_all()

    def flush(self, timeout: float = 2.0) -> bool:
        """Wait until every item queued so far is written (or dropped); False on timeout."""
        deadline = time.monotonic() + timeout
        with self._wake:
            want = self._queued
            while self._done < want and self._thread.is_alive():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._wake.wait(left)
            return self._done >= want

    def _take(self) -> list[T]:
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
                self._write(batch)
            except Exception as exc:
                self._log.warning(
                    "%s: writing %s to %s failed (retrying in %.0f s): %s",
                    self.log_name,
                    self._count(len(batch)),
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
                    # New items wake the condition too: keep the backoff unless closing.
                    retry_at = time.monotonic() + delay
                    while not self._stopping and (left := retry_at - time.monotonic()) > 0:
                        self._wake.wait(left)
                delay = min(delay * 2, RETRY_MAX)
                continue
            delay = RETRY_FIRST
            with self._wake:
                for _ in range(self._inflight):
                    self._queue.popleft()
                self._done += self._inflight
                self._inflight = 0
                if self._dropped:
                    self._log.warning(
                        "%s: %s dropped (queue full)", self.log_name, self._count(self._dropped)
                    )
                    self._dropped = 0
                self._wake.notify_all()

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued (for up to `timeout` seconds), then stop and close the store."""
        with self._wake:
            self._stopping = True
            self._deadline = time.monotonic() + timeout
            self._wake.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout)
        with self._wake:
            left = len(self._queue)
        if left:
            self._log.warning("%s: %s not written at stop", self.log_name, self._count(left))
        self.store.close()
