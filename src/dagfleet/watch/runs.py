"""Runs: which events a run record calls for, each published once.

A run that started publishes RUN_STARTED once, and a run that ended publishes its
end (RUN_SUCCEEDED, RUN_FAILED or RUN_CANCELED) once. The decision rests on the
run's status and start time, not on which polls happened to see it: a run seen
first when already failed still publishes RUN_STARTED before RUN_FAILED, and a
run canceled while queued (it never started) publishes only RUN_CANCELED.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from dagster import DagsterRunStatus
from dagster._core.storage.dagster_run import RunRecord

from dagfleet.events import Event, Kind

ENDS = {
    DagsterRunStatus.SUCCESS: Kind.RUN_SUCCEEDED,
    DagsterRunStatus.FAILURE: Kind.RUN_FAILED,
    DagsterRunStatus.CANCELED: Kind.RUN_CANCELED,
}
# How many runs the tracker remembers; older ones have long since ended.
MEMORY = 20_000
STARTED, ENDED = 1, 2

Resolve = Callable[[str], tuple[str, str]]  # location -> (repo, env), ("", "") if unknown


def iso(timestamp: float | None) -> str:
    if timestamp is None:
        return ""
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class RunFacts:
    """What an event says about a run, read from its record."""

    run_id: str
    job: str
    location: str
    repo: str
    env: str
    commit: str | None
    tags: dict[str, str]
    started: float | None
    ended: float | None

    @classmethod
    def of(cls, record: RunRecord, resolve: Resolve) -> RunFacts:
        run = record.dagster_run
        tags = dict(run.tags)
        origin = run.remote_job_origin
        location = origin.location_name if origin is not None else tags.get("dagfleet/location", "")
        repo, env = resolve(location) if location else ("", "")
        return cls(
            run_id=run.run_id,
            job=run.job_name,
            location=location,
            repo=tags.get("dagfleet/repo") or repo,
            env=tags.get("dagfleet/env") or env,
            commit=tags.get("dagfleet/commit"),
            tags=tags,
            started=record.start_time,
            ended=record.end_time,
        )

    def event(self, kind: Kind) -> Event:
        verb = {
            Kind.RUN_STARTED: "started",
            Kind.RUN_SUCCEEDED: "succeeded",
            Kind.RUN_FAILED: "failed",
            Kind.RUN_CANCELED: "was canceled",
        }[kind]
        data = {
            "run_id": self.run_id,
            "job": self.job,
            "location": self.location,
            "tags": json.dumps(self.tags, sort_keys=True),
            "start_time": iso(self.started),
        }
        if kind is not Kind.RUN_STARTED:
            data["end_time"] = iso(self.ended)
        return Event(
            kind=kind,
            location=self.location,
            repo=self.repo,
            env=self.env,
            commit=self.commit,
            message=f"run {self.run_id[:8]} of {self.job} {verb}",
            data=data,
        )


class RunTracker:
    """Remembers how far each run got, so every event is published once."""

    def __init__(self, resolve: Resolve, memory: int = MEMORY) -> None:
        self._resolve = resolve
        self._memory = memory
        self._stage: OrderedDict[str, int] = OrderedDict()

    def _stage_of(self, record: RunRecord) -> int:
        run = record.dagster_run
        if run.status in ENDS:
            return ENDED
        if record.start_time is not None:
            return STARTED
        return 0

    def _remember(self, run_id: str, stage: int) -> None:
        self._stage[run_id] = stage
        self._stage.move_to_end(run_id)
        while len(self._stage) > self._memory:
            self._stage.popitem(last=False)

    def seed(self, records: Iterable[RunRecord]) -> None:
        """What already happened before the watcher started: remembered, not published."""
        for record in records:
            self._remember(record.dagster_run.run_id, self._stage_of(record))

    def events(self, records: Iterable[RunRecord]) -> list[Event]:
        out: list[Event] = []
        for record in records:
            run = record.dagster_run
            before = self._stage.get(run.run_id, 0)
            now = self._stage_of(record)
            if now <= before:
                continue
            facts = RunFacts.of(record, self._resolve)
            if before < STARTED and record.start_time is not None:
                out.append(facts.event(Kind.RUN_STARTED))
            if now == ENDED:
                out.append(facts.event(ENDS[run.status]))
            self._remember(run.run_id, now)
        return out
