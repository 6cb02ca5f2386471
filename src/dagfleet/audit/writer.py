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
`close()` writes what is queued, for up to its timeout, then stops. The queue, the
thread, the retries, `flush` and `close` are `history.queued.QueuedWriter`'s.

`record_now` writes synchronously in the caller's thread, for processes that end
right after (the CLI with no fleet running); it logs a failing database instead
of raising, since the audited change has already happened. `flush` waits until
everything recorded so far is written, so a reader sees its own change.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from dagfleet.audit.models import AuditEntry
from dagfleet.history.queued import QueuedWriter

if TYPE_CHECKING:
    from dagfleet.audit.store import AuditStore

log = logging.getLogger(__name__)


class AuditWriter(QueuedWriter[AuditEntry]):
    """The audit log's only writer in a process: queue in, one thread out."""

    store: AuditStore

    def __init__(self, store: AuditStore, fleet_id: str) -> None:
        super().__init__(
            store, log_name="audit log", items=("entry", "entries"), thread="audit-writer"
        )
        self.fleet = fleet_id

    def _stamped(self, entry: AuditEntry) -> AuditEntry:
        return entry if entry.fleet else entry.model_copy(update={"fleet": self.fleet})

    def record(self, entry: AuditEntry) -> None:
        """Queue `entry` for the writer thread (its `fleet` is this writer's when empty)."""
        try:
            self._enqueue(self._stamped(entry))
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

    def _write(self, batch: list[AuditEntry]) -> None:
        self.store.append_all(batch)
