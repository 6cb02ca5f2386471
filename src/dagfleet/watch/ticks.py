"""Schedule and sensor ticks: TICK_FAILED and TICK_SUCCEEDED, each tick once.

New ticks are read by id (the ticks table's primary key) after the last id seen;
ticks still running are read again by id until they end. That is two indexed
queries a poll, whatever the number of schedules and sensors.

A failed tick publishes TICK_FAILED. A successful tick (it requested runs)
publishes TICK_SUCCEEDED; a skipped tick (nothing to do) publishes it only
right after a failure of the same schedule or sensor, to say it works again.
Sensors tick every 30 seconds, and an event per skipped tick would be noise.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import sqlalchemy as db
from dagster._core.scheduler.instigation import InstigatorTick, TickData, TickStatus
from dagster._core.storage.schedules.schema import JobTickTable
from dagster._core.storage.schedules.sql_schedule_storage import SqlScheduleStorage
from dagster._serdes import deserialize_value
from dagster_shared.error import SerializableErrorInfo

from dagfleet.events import Event, Kind

BATCH = 500
STALE = 3600.0  # seconds a tick may stay STARTED before it is no longer followed
Where = Callable[[str], tuple[str, str, str]]  # selector id -> (location, repo, env)


def first_line(text: str | None) -> str:
    return (text or "").strip().splitlines()[0] if (text or "").strip() else ""


def error_line(error: SerializableErrorInfo | None) -> str:
    """The first line of the root cause: the user's exception, not Dagster's wrapper
    ("SensorExecutionError: Error occurred during the execution of ...")."""
    while error is not None and error.cause is not None:
        error = error.cause
    return first_line(error.message) if error is not None else ""


@dataclass
class TickReader:
    """Reads ticks by id from a SQL schedule storage (SQLite or PostgreSQL)."""

    storage: SqlScheduleStorage

    def _rows(self, query: db.Select[tuple[int, str]]) -> list[InstigatorTick]:
        return [
            InstigatorTick(row[0], deserialize_value(row[1], TickData))
            for row in self.storage.execute(query)
        ]

    def last_id(self) -> int:
        rows = self.storage.execute(db.select(db.func.max(JobTickTable.c.id)))
        return int(rows[0][0] or 0) if rows else 0

    def after(self, tick_id: int) -> list[InstigatorTick]:
        query = (
            db.select(JobTickTable.c.id, JobTickTable.c.tick_body)
            .where(JobTickTable.c.id > tick_id)
            .order_by(JobTickTable.c.id.asc())
            .limit(BATCH)
        )
        return self._rows(query)

    def by_ids(self, ids: Sequence[int]) -> list[InstigatorTick]:
        if not ids:
            return []
        return list(self.storage.get_ticks_by_ids(list(ids)))


class TickTracker:
    """Which ticks are still running, and which instigators failed last."""

    def __init__(self, where: Where) -> None:
        self._where = where
        self.cursor = 0
        self.open: set[int] = set()
        self._failing: set[str] = set()

    def events(self, ticks: Iterable[InstigatorTick], now: float | None = None) -> list[Event]:
        now = time.time() if now is None else now
        out: list[Event] = []
        for tick in ticks:
            self.cursor = max(self.cursor, tick.tick_id)
            if tick.status == TickStatus.STARTED:
                # A tick a killed daemon left STARTED is not read again forever.
                if now - tick.timestamp < STALE:
                    self.open.add(tick.tick_id)
                else:
                    self.open.discard(tick.tick_id)
                continue
            self.open.discard(tick.tick_id)
            key = tick.selector_id or tick.instigator_origin_id
            if tick.status == TickStatus.FAILURE:
                self._failing.add(key)
                out.append(self._event(Kind.TICK_FAILED, tick))
            elif tick.status == TickStatus.SUCCESS or key in self._failing:
                self._failing.discard(key)
                out.append(self._event(Kind.TICK_SUCCEEDED, tick))
        return out

    def _event(self, kind: Kind, tick: InstigatorTick) -> Event:
        location, repo, env = self._where(tick.selector_id or "")
        kind_name = tick.instigator_type.value.lower()
        error = error_line(tick.error)
        what = "failed" if kind is Kind.TICK_FAILED else "succeeded"
        message = f"{kind_name} {tick.instigator_name} {what}" + (f": {error}" if error else "")
        return Event(
            kind=kind,
            location=location,
            repo=repo,
            env=env,
            message=message,
            data={
                "name": tick.instigator_name,
                "type": kind_name,
                "location": location,
                "error": error,
                "tick_id": str(tick.tick_id),
                "status": tick.status.value,
            },
        )
