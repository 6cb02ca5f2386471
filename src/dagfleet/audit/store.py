"""The `dagfleet_audit` table, in the same database as the publish history.

That is the instance's database: PostgreSQL when fleet.yaml has
`instance.postgres` or DAGSTER_POSTGRES_* are set, else SQLite at
`.dagfleet/history.db` (`dagfleet.history.store.database_url` decides, once for
both). Rows carry the fleet's id, so fleets sharing one PostgreSQL database keep
their logs apart; the index on (fleet, id) serves every read (newest first).
Reads never create anything. Entries are kept until someone deletes them
(docs/audit.md shows the SQL). The engine, `where()` and the table's creation are
`history.db.TableStore`'s, shared with the publish history.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from dagfleet.audit.models import Action, AuditEntry
from dagfleet.history.db import TableStore
from dagfleet.history.store import database_url
from dagfleet.layout import Layout
from dagfleet.spec import FleetSpec

TABLE = "dagfleet_audit"

metadata = sa.MetaData()
entries = sa.Table(
    TABLE,
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("fleet", sa.String(64), nullable=False),
    sa.Column("at", sa.String(40), nullable=False),  # UTC, fixed width: compares as text
    sa.Column("actor", sa.String(255), nullable=False),
    sa.Column("via", sa.String(16), nullable=False),
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("outcome", sa.String(16), nullable=False),
    sa.Column("location", sa.String(255)),
    sa.Column("repository", sa.String(255)),
    sa.Column("environment", sa.String(255)),
    sa.Column("target", sa.Text),
    sa.Column("detail", sa.Text),
    sa.Column("client", sa.String(255)),
    sa.Index("ix_dagfleet_audit_fleet_id", "fleet", "id"),
)
_COLUMNS = [c.name for c in entries.columns if c.name != "id"]


class AuditStore(TableStore):
    """Entries in and out of one database; safe to share between threads."""

    table = entries

    def append(self, entry: AuditEntry) -> int:
        """Write one entry (its `fleet` must be set); its id."""
        return self.append_all([entry])[0]

    def append_all(self, batch: Sequence[AuditEntry]) -> list[int]:
        """Write entries in one transaction (all or none), in order; their ids."""
        for entry in batch:
            if not entry.fleet:
                raise ValueError(f"audit entry {entry.action} by {entry.actor} has no fleet id")
        self.create()
        ids: list[int] = []
        with self.engine.begin() as conn:
            for entry in batch:
                row = entry.model_dump(mode="json", exclude={"id"})
                result = conn.execute(entries.insert().values(**row))
                key = result.inserted_primary_key
                ids.append(int(key[0]) if key else 0)
        return ids

    def query(
        self,
        fleet: str,
        actor: str | None = None,
        action: Action | str | None = None,
        location: str | None = None,
        since: str | None = None,
        limit: int = 100,
        before_id: int | None = None,
    ) -> list[AuditEntry]:
        """The fleet's entries matching every filter given, newest first.

        `since` is a stored time (`models.parse_since`): entries at or after it.
        `before_id` pages back: entries with a smaller id than the last one seen.
        """
        if not self._exists():
            return []
        c = entries.c
        query = sa.select(entries).where(c.fleet == fleet)
        if actor is not None:
            query = query.where(c.actor == actor)
        if action is not None:
            query = query.where(c.action == str(action))
        if location is not None:
            query = query.where(c.location == location)
        if since is not None:
            query = query.where(c.at >= since)
        if before_id is not None:
            query = query.where(c.id < before_id)
        query = query.order_by(c.id.desc()).limit(limit)
        with self.engine.connect() as conn:
            return [_entry(dict(row._mapping)) for row in conn.execute(query)]


def _entry(row: Mapping[str, Any]) -> AuditEntry:
    return AuditEntry.model_validate({"id": row["id"], **{k: row[k] for k in _COLUMNS}})


def open_store(spec: FleetSpec, layout: Layout, environ: Mapping[str, str]) -> AuditStore:
    """The audit table in the instance's database (the publish history's)."""
    return AuditStore(database_url(spec, layout, environ))
