"""What the front door writes to the audit log: every mutation it let through (who,
which, in which location) and every one it refused. Reads and the UI's own
bookkeeping (telemetry, "seen" flags) are not recorded."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from dagfleet.audit.models import Action as Audited
from dagfleet.audit.models import AuditEntry, Outcome, Via
from dagfleet.audit.writer import AuditWriter
from dagfleet.frontdoor.door import AuditSink
from dagfleet.frontdoor.roles import Principal, Target

# Dagster mutation fields -> audit actions; any other mutation is graphql.other.
ACTIONS: Mapping[str, Audited] = {
    "launchPipelineExecution": Audited.RUN_LAUNCH,
    "launchRun": Audited.RUN_LAUNCH,
    "launchMultipleRuns": Audited.RUN_LAUNCH,
    "launchPipelineReexecution": Audited.RUN_REEXECUTE,
    "launchRunReexecution": Audited.RUN_REEXECUTE,
    "launchPartitionBackfill": Audited.BACKFILL_LAUNCH,
    "resumePartitionBackfill": Audited.BACKFILL_LAUNCH,
    "reexecutePartitionBackfill": Audited.BACKFILL_LAUNCH,
    "terminatePipelineExecution": Audited.RUN_TERMINATE,
    "terminateRun": Audited.RUN_TERMINATE,
    "terminateRuns": Audited.RUN_TERMINATE,
    "deletePipelineRun": Audited.RUN_DELETE,
    "deleteRun": Audited.RUN_DELETE,
    "wipeAssets": Audited.ASSETS_WIPE,
    "startSchedule": Audited.SCHEDULE_START,
    "stopRunningSchedule": Audited.SCHEDULE_STOP,
    "startSensor": Audited.SENSOR_START,
    "stopSensor": Audited.SENSOR_STOP,
    "reloadRepositoryLocation": Audited.LOCATION_RELOAD,
}
UNRECORDED = frozenset({"logTelemetry", "setNuxSeen"})


def _via(principal: Principal) -> Via:
    try:
        return Via(principal.via)
    except ValueError:
        return Via.TOKEN


def sink(writer: AuditWriter, target_of: Callable[[str], Target]) -> AuditSink:
    """The door's audit callback, writing through `writer` (a queue put: never blocks)."""

    def record(
        principal: Principal,
        action: str,
        field: str,
        locations: tuple[str, ...],
        outcome: str,
        detail: str,
        client: str | None,
    ) -> None:
        if field in UNRECORDED:
            return
        base = {
            "actor": principal.name,
            "via": _via(principal),
            "action": ACTIONS.get(field, Audited.GRAPHQL_OTHER),
            "outcome": Outcome.DENIED if outcome == "denied" else Outcome.ALLOWED,
            "detail": detail or field or None,
            "client": client,
        }
        if not locations:
            writer.record(AuditEntry(**base))  # type: ignore[arg-type]
            return
        for location in locations:
            target = target_of(location)
            writer.record(
                AuditEntry(
                    **base,  # type: ignore[arg-type]
                    location=location,
                    repository=target.repository,
                    environment=target.environment,
                )
            )

    return record
