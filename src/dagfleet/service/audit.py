"""The service's side of the audit log: recording its own changes, and reading the log.

`FleetService` wraps each changing operation in `AuditLog.action(...)`: the entry
is recorded once the operation returns (outcome `allowed`) or raises (`failed`,
with the error's first line). An operation called from inside another one (a
rollback writes the pin with `patch_repo` and then syncs) records nothing of its
own: only the outermost operation is the user's action.

Entries go to the running fleet's `AuditWriter` when `dagfleet up` handed one
over (a queue put), else they are written at once (the CLI with no fleet
running, the API app in tests): the process may end right after.
"""

from __future__ import annotations

import builtins
import contextlib
import getpass
import logging
import os
import threading
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dagfleet.audit.models import (
    Action,
    Actor,
    AuditEntry,
    AuditQuery,
    Outcome,
    Via,
    first_line,
)
from dagfleet.layout import Layout
from dagfleet.registry import Registry
from dagfleet.service.identity import ID_FILE, fleet_id

if TYPE_CHECKING:
    from dagfleet.audit.store import AuditStore
    from dagfleet.audit.writer import AuditWriter

log = logging.getLogger(__name__)

ANONYMOUS = Actor("anonymous", Via.LOOPBACK)
# True while an audited operation runs in this thread (or request): inner ones stay quiet.
_ACTIVE: ContextVar[bool] = ContextVar("dagfleet_audit_active", default=False)


def local_actor() -> Actor:
    """The OS user running this process, for the CLI working on the fleet files."""
    try:
        name = getpass.getuser()
    except Exception:  # no user name in the environment nor the password database
        name = f"uid {os.getuid()}"
    return Actor(name, Via.OFFLINE)


def patch_action(patch: Mapping[str, Any]) -> Action:
    """What a merge patch of a repo file does: suspend/resume, pin/unpin, or a change."""
    keys = set(patch)
    if keys == {"suspend"}:
        return Action.REPO_SUSPEND if patch["suspend"] else Action.REPO_RESUME
    if keys == {"pins"}:
        pins = patch["pins"]
        if isinstance(pins, Mapping) and any(v is not None for v in pins.values()):
            return Action.PIN
        return Action.UNPIN
    return Action.REPO_CHANGE


def changed_fields(before: Mapping[str, Any], after: Mapping[str, Any]) -> builtins.list[str]:
    """The top-level fields of a repo file that differ (names only: values may be secret)."""
    return sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))


@dataclass
class Note:
    """What the operation adds to its entry as it learns it (a rollback finds its commit)."""

    location: str | None = None
    repository: str | None = None
    environment: str | None = None
    target: str | None = None
    detail: str | None = None
    skip: bool = False  # nothing happened that is worth an entry (a push nobody follows)


class AuditLog:
    """One fleet's audit log as the service sees it: a sink for entries, and the reader."""

    def __init__(self, registry: Registry, layout: Layout, writer: AuditWriter | None) -> None:
        self.registry = registry
        self.layout = layout
        self.writer = writer
        self._store: AuditStore | None = None
        self._direct: AuditWriter | None = None
        self._lock = threading.Lock()

    def _open(self) -> AuditStore:
        from dagfleet.audit.store import AuditStore
        from dagfleet.history.store import database_url

        url = database_url(self.registry.fleet_spec(), self.layout, os.environ)
        with self._lock:
            if self._store is None or self._store.url != url:
                if self._store is not None:
                    self._store.close()
                self._store = AuditStore(url)
                self._direct = None
            return self._store

    def record(self, entry: AuditEntry) -> None:
        """To the running writer, else straight into the database; never raises."""
        try:
            if self.writer is not None and self.writer.running:
                self.writer.record(entry)
                return
            from dagfleet.audit.writer import AuditWriter

            store = self._open()
            with self._lock:
                if self._direct is None or self._direct.store is not store:
                    self._direct = AuditWriter(store, fleet_id(self.layout))
                direct = self._direct
            direct.record_now(entry)
        except Exception as exc:  # the change is made: its entry must not turn it into an error
            log.warning("audit log: %s by %s not recorded: %s", entry.action, entry.actor, exc)

    @contextlib.contextmanager
    def action(
        self,
        actor: Actor,
        action: Action,
        location: str | None = None,
        repository: str | None = None,
        environment: str | None = None,
        target: str | None = None,
    ) -> Iterator[Note]:
        """Record `action` by `actor` when the block ends: allowed, or failed if it raised."""
        note = Note(location, repository, environment, target)
        if _ACTIVE.get():
            yield note  # part of an outer operation, which records itself
            return
        token = _ACTIVE.set(True)
        try:
            yield note
        except Exception as exc:
            self.record(_entry(actor, action, Outcome.FAILED, note, first_line(exc)))
            raise
        else:
            if not note.skip:
                self.record(_entry(actor, action, Outcome.ALLOWED, note, note.detail))
        finally:
            _ACTIVE.reset(token)

    def _fleet_id(self) -> str | None:
        try:
            return (self.layout.root / ID_FILE).read_text(encoding="utf-8").strip() or None
        except OSError:
            return None

    def read(self, query: AuditQuery) -> builtins.list[AuditEntry]:
        """Matching entries, newest first; what this process recorded is written first."""
        if self.writer is not None and self.writer.running:
            self.writer.flush()
        fleet = self._fleet_id()
        if fleet is None:
            return []  # never ran, never changed: nothing recorded (and nothing made)
        return self._open().query(
            fleet,
            actor=query.actor,
            action=query.action,
            location=query.location,
            since=query.since,
            limit=query.limit,
            before_id=query.before,
        )

    def close(self) -> None:
        with self._lock:
            if self._store is not None:
                self._store.close()
                self._store = None
                self._direct = None


def _entry(
    actor: Actor, action: Action, outcome: Outcome, note: Note, detail: str | None
) -> AuditEntry:
    return AuditEntry(
        actor=actor.name,
        via=actor.via,
        client=actor.client,
        action=action,
        outcome=outcome,
        location=note.location,
        repository=note.repository,
        environment=note.environment,
        target=note.target,
        detail=detail,
    )
