"""`AuditWriter`: entries into the store on the writer's own thread, like the history recorder.

`dagfleet up` starts one (`FleetApp.audit`) and hands it to the API's service; the
front door records into the same one. Recording an action from any thread::

    from dagfleet.audit.models import Action, AuditEntry, Outcome, Via

    app.audit.record(
        AuditEntry(
            actor=principal.name,
            via=Via(principal.via),
            action=Action.RUN_LAUNCH,  # or Action.GRAPHQL_OTHER with detail=<mutation field>
            outcome=Outcome.DENIED,  # ALLOWED (default), DENIED or FAILED
            location="sales-prod",
            repository="sales",  # when known
            environment="prod",
            target=run_id,
            detail="launchRun",
            client=request_address,
        )
    )

`record` only queues: it never blocks and never raises (a bad entry is logged and
dropped), and `at` is taken when the entry is made, not when it is written. The
thread writes whatever is queued in one transaction; when the database does not
answer, the batch stays queued and is retried with backoff (1 s doubling to 30 s),
and the oldest entries are dropped (and logged) if the queue ever fills.
`close()` writes what is queued, for up to its timeout, then stops.

`record_now` writes synchronously in the caller's thread, for processes that end
right after (the CLI with no fleet running); it logs a failing database instead
of raising, since the audited change has already happened. `flush` waits until
everything recorded so far is written, so a reader sees its own change.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from typing import TYPE_CHECKING

from dagfleet.audit.models import AuditEntry

if TYPE_CHECKING:
    from dagfleet.audit.store import AuditStore

log = logging.getLogger(__name__)

MAX_QUEUED = 10_000
RETRY_FIRST, RETRY_MAX = 1.0, 30.0
STOP_RETRY = 0.2  # seconds between tries of the last writes while closing


class AuditWriter:
    """The audit log's only writer in a process: queue in, one thread out."""

    def __init__(self, store: AuditStore, fleet_id: str) -> None:
        self.store = store
        self.fleet = fleet_id
        self._queue: collections.deque[AuditEntry] = collections.deque()
        self._wake = threading.Condition()
        self._stopping = False
        self._dropped = 0
        self._inflight = 0  # queued entries the thread is writing now (the oldest ones)
        self._recorded = 0  # entries queued since start
        self._done = 0  # of those, written or dropped (flush waits for this to catch up)
        self._deadline = float("inf")
        self._thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)

    @property
    def running(self) -> bool:
        return self._thread.is_alive() and not self._stopping

    def start(self) -> AuditWriter:
        self._thread.start()
        return self

    def _stamped(self, entry: AuditEntry) -> AuditEntry:
        return entry if entry.fleet else entry.model_copy(update={"fleet": self.fleet})

    def record(self, entry: AuditEntry) -> None:
        """Queue `entry` for the writer thread (its `fleet` is this writer's when empty)."""
        try:
            stamped = self._stamped(entry)
            with self._wake:
                if len(self._queue) >= MAX_QUEUED:
                    self._queue.popleft()
                    self._dropped += 1
                    self._done += 1
                    self._inflight = max(0, self._inflight - 1)
                self._queue.append(stamped)
                self._recorded += 1
                self._wake.notify_all()
        except Exception:  # the caller's request must not fail because of its audit entry
            log.exception("audit log: could not queue an entry")

    def record_now(self, entry: AuditEntry) -> bool:
        """Write `entry` in this thread; False (and a warning in the log) if that failed."""
        try:
            self.store.append(self._stamped(entry))
        except Exception as exc:
            log.warning(
                "audit log: writing %s by %s to %s failed: %s",
                entry.action,
                entry.actor,
                self.store.where(),
                exc,
            )
            return False
        return True

    def flush(self, timeout: float = 2.0) -> bool:
        """Wait until every entry recorded so far is written; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._wake:
            want = self._recorded
            while self._done < want and self._thread.is_alive():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._wake.wait(left)
            return self._done >= want

    def _take(self) -> list[AuditEntry]:
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
                self.store.append_all(batch)
            except Exception as exc:
                log.warning(
                    "audit log: writing %d entr%s to %s failed (retrying in %.0f s): %s",
                    len(batch),
                    "y" if len(batch) == 1 else "ies",
                    self.store.where(),
                    delay,
                    exc,
                )
                with self._wake:
                    if self._stopping:
                        if time.monotonic() >= self._deadline:
                            return
                        self._wake.wait(STOP_RETRY)
                        continue
                    # New entries wake the condition too: keep the backoff unless closing.
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
                    log.warning("audit log: %d entr(ies) dropped (queue full)", self._dropped)
                    self._dropped = 0
                self._wake.notify_all()

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
            log.warning("audit log: %d entr(ies) not written at stop", left)
        self.store.close()
