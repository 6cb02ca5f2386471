"""Condition types, CamelCase reasons and the derivation of `Ready`."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

ConditionStatus = Literal["True", "False", "Unknown"]


class ConditionType(StrEnum):
    READY = "Ready"
    SERVING = "Serving"
    SYNCED = "Synced"
    SUSPENDED = "Suspended"


class Reason(StrEnum):
    """Every reason dagfleet reports; one place so the API's vocabulary stays closed."""

    # Synced
    PUBLISHED = "Published"
    PROGRESSING = "Progressing"
    GIT_FETCH_FAILED = "GitFetchFailed"
    REF_NOT_FOUND = "RefNotFound"
    CODE_TARGET_NOT_FOUND = "CodeTargetNotFound"
    DEPENDENCY_INSTALL_FAILED = "DependencyInstallFailed"
    DAGSTER_VERSION_UNSUPPORTED = "DagsterVersionUnsupported"
    BUILD_FAILED = "BuildFailed"
    DEFINITIONS_INVALID = "DefinitionsInvalid"
    PINNED = "Pinned"
    SECRET_NOT_FOUND = "SecretNotFound"
    # Serving
    CODE_SERVER_RUNNING = "CodeServerRunning"
    CODE_SERVER_STARTING = "CodeServerStarting"
    CODE_SERVER_CRASHED = "CodeServerCrashed"
    CODE_SERVER_STOPPED = "CodeServerStopped"
    NO_GOOD_COMMIT = "NoGoodCommit"
    FLEET_STOPPED = "FleetStopped"  # `dagfleet up` is not running: nothing serves
    # Suspended
    SUSPENDED = "Suspended"


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class Condition(BaseModel):
    model_config = ConfigDict(frozen=True)

    type: str
    status: ConditionStatus
    reason: str
    message: str = ""
    last_transition: str = Field(default_factory=now)


class LocationStatus(BaseModel):
    """What dagfleet knows about one location; written to status/<location>.json."""

    location: str
    repo: str
    env: str
    ref: str = ""
    commit: str | None = None
    last_good_commit: str | None = None
    progressing_commit: str | None = Field(
        default=None,
        description=(
            "The commit a publish is preparing or loading right now (the full sha), while "
            "Synced is False with reason Progressing; null otherwise. `commit` stays the "
            "commit that serves until the new one goes live."
        ),
    )
    address: str | None = Field(
        default=None, description="Where the code server answers: its Unix socket locally."
    )
    port: int | None = Field(
        default=None,
        description=(
            "The code server's TCP port, for servers that listen on one; null for local "
            "code servers, which listen on the Unix socket in `address` (handed over "
            "atomically on publish). Rendered deployments use port 4000."
        ),
    )
    debug_port: int | None = None
    pid: int | None = None
    dagster_version: str | None = None
    dependency_hash: str | None = None
    last_sync: str | None = None
    last_successful_sync: str | None = None
    sync_duration_seconds: float | None = None
    failures: int = 0
    conditions: list[Condition] = Field(default_factory=list)

    def condition(self, type_: str) -> Condition | None:
        for c in self.conditions:
            if c.type == type_:
                return c
        return None

    def with_condition(
        self, type_: str, status: ConditionStatus, reason: str, message: str = ""
    ) -> LocationStatus:
        """Set one condition, keeping last_transition when the status did not change."""
        old = self.condition(type_)
        stamp = old.last_transition if old is not None and old.status == status else now()
        new = Condition(
            type=type_, status=status, reason=reason, message=message, last_transition=stamp
        )
        rest = [c for c in self.conditions if c.type not in (type_, ConditionType.READY)]
        conditions = [*rest, new]
        ready = derive_ready(conditions)
        old_ready = self.condition(ConditionType.READY)
        if old_ready is not None and old_ready.status == ready.status:
            ready = ready.model_copy(update={"last_transition": old_ready.last_transition})
        return self.model_copy(update={"conditions": [*conditions, ready]})

    @property
    def ready(self) -> bool:
        c = self.condition(ConditionType.READY)
        return c is not None and c.status == "True"


def derive_ready(conditions: list[Condition]) -> Condition:
    """Ready is never set by hand: a location is Ready while it serves a good commit.

    A failed sync of a newer commit does not make it un-Ready (last good wins); the
    Synced condition carries that failure. Suspension wins over everything, then a
    stopped fleet.
    """
    by_type = {c.type: c for c in conditions if c.type != ConditionType.READY}
    suspended = by_type.get(ConditionType.SUSPENDED)
    serving = by_type.get(ConditionType.SERVING)
    synced = by_type.get(ConditionType.SYNCED)
    if suspended is not None and suspended.status == "True":
        return Condition(type="Ready", status="False", reason=Reason.SUSPENDED, message="")
    if serving is not None and serving.reason == Reason.FLEET_STOPPED:
        # A stopped fleet serves nothing, whatever the last sync said.
        return Condition(
            type="Ready", status="False", reason=Reason.FLEET_STOPPED, message=serving.message
        )
    if serving is None:
        if synced is not None and synced.status == "False" and synced.reason != Reason.PROGRESSING:
            # Nothing was ever served and the first sync failed: not Ready, and why.
            return Condition(
                type="Ready", status="False", reason=synced.reason, message=synced.message
            )
        return Condition(type="Ready", status="Unknown", reason=Reason.PROGRESSING)
    if serving.status == "True":
        message = serving.message
        if synced is not None and synced.status == "False":
            stale = f"newer commit not published: {synced.reason}"
            message = f"{serving.message}; {stale}" if serving.message else stale
        return Condition(type="Ready", status="True", reason=serving.reason, message=message)
    if synced is not None and synced.status == "False":
        return Condition(type="Ready", status="False", reason=synced.reason, message=synced.message)
    return Condition(
        type="Ready", status=serving.status, reason=serving.reason, message=serving.message
    )
