"""The `dagfleet_publish_attempts` table, in the instance's own database.

The database is the one the fleet's Dagster instance uses: PostgreSQL when
fleet.yaml has `instance.postgres` or the DAGSTER_POSTGRES_* variables are set
(the same choice, in the same order, as the generated dagster.yaml), else SQLite
at `.dagfleet/history.db`. So history lives as long as the runs it explains.

Rows carry the fleet's id: fleets sharing one PostgreSQL database keep their
histories apart. Reads never create anything: a fleet that never ran has an
empty history, not a new file. The engine, `where()` and the table's creation are
`db.TableStore`'s, shared with the audit log.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from dagfleet.history.db import TableStore
from dagfleet.history.models import PublishAttempt, StepTime
from dagfleet.layout import Layout
from dagfleet.runtime.instance import postgres_from_env, postgres_from_spec
from dagfleet.spec import FleetSpec

TABLE = "dagfleet_publish_attempts"
SQLITE_FILE = "history.db"

metadata = sa.MetaData()
attempts = sa.Table(
    TABLE,
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("fleet", sa.String(64), nullable=False),
    sa.Column("location", sa.String(255), nullable=False),
    sa.Column("repo", sa.String(255), nullable=False),
    sa.Column("env", sa.String(255), nullable=False),
    sa.Column("commit", sa.String(64)),
    sa.Column("previous", sa.String(64)),
    sa.Column("author", sa.Text),
    sa.Column("subject", sa.Text),
    sa.Column("started", sa.String(40), nullable=False),
    sa.Column("finished", sa.String(40), nullable=False),
    sa.Column("seconds", sa.Float, nullable=False),
    sa.Column("steps", sa.Text, nullable=False),  # JSON [[step, seconds], ...], in order
    sa.Column("outcome", sa.String(16), nullable=False),
    sa.Column("reason", sa.String(255)),
    sa.Column("message", sa.Text),
    sa.Column("transient", sa.Boolean, nullable=False),
    sa.Column("forced", sa.Boolean, nullable=False),
    sa.Index("ix_dagfleet_publish_attempts_location", "fleet", "location", "id"),
)


def _resolve(value: Any, environ: Mapping[str, str]) -> Any:
    """A dagster.yaml value: `{"env": NAME}` is read from the environment, like Dagster does."""
    if isinstance(value, dict) and "env" in value:
        return environ.get(str(value["env"]))
    return value


def database_url(spec: FleetSpec, layout: Layout, environ: Mapping[str, str]) -> sa.URL:
    """The instance's PostgreSQL (fleet.yaml first, then DAGSTER_POSTGRES_*), else SQLite."""
    pg = postgres_from_spec(spec.instance.postgres) if spec.instance.postgres else None
    pg = pg or postgres_from_env(environ)
    if pg is None:
        return sa.URL.create("sqlite", database=str(layout.root / SQLITE_FILE))
    port = _resolve(pg.get("port"), environ)
    return sa.URL.create(
        str(pg["scheme"]),
        username=_resolve(pg.get("username"), environ),
        password=_resolve(pg.get("password"), environ),
        host=_resolve(pg.get("hostname"), environ),
        port=int(port) if port else None,
        database=_resolve(pg.get("db_name"), environ),
    )


class HistoryStore(TableStore):
    """Attempts in and out of one database; safe to share between threads."""

    table = attempts

    def add(self, fleet: str, records: Sequence[PublishAttempt]) -> None:
        """Write attempts in one transaction (all or none)."""
        if not records:
            return
        self.create()
        rows = [
            {
                **r.model_dump(exclude={"steps"}),
                "fleet": fleet,
                "steps": json.dumps([[s.step, s.seconds] for s in r.steps]),
            }
            for r in records
        ]
        with self.engine.begin() as conn:
            conn.execute(attempts.insert(), rows)

    def recent(
        self, fleet: str, location: str, limit: int, outcome: str | None = None
    ) -> list[PublishAttempt]:
        """The location's attempts, newest first (only those with `outcome`, when given)."""
        if not self._exists():
            return []
        query = (
            sa.select(attempts)
            .where(attempts.c.fleet == fleet, attempts.c.location == location)
            .order_by(attempts.c.id.desc())
            .limit(limit)
        )
        if outcome is not None:
            query = query.where(attempts.c.outcome == outcome)
        with self.engine.connect() as conn:
            return [_record(dict(row._mapping)) for row in conn.execute(query)]


def _record(row: Mapping[str, Any]) -> PublishAttempt:
    fields = {k: v for k, v in row.items() if k not in ("id", "fleet", "steps")}
    steps = [StepTime(step=s, seconds=t) for s, t in json.loads(row["steps"])]
    return PublishAttempt(**fields, steps=steps)


def open_store(spec: FleetSpec, layout: Layout, environ: Mapping[str, str]) -> HistoryStore:
    return HistoryStore(database_url(spec, layout, environ))
