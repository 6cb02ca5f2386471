"""Runs know their commit: the `dagfleet/*` run tags, written in two places.

Every run carries four tags, shown in the Dagster UI and usable in run filters and
in the QueuedRunCoordinator's `tag_concurrency_limits`:

    dagfleet/repo, dagfleet/env, dagfleet/location, dagfleet/commit

1. **When the run is submitted** (`TaggingRunCoordinator`, `TaggingQueuedRunCoordinator`:
   Dagster's two stock coordinators plus one step). Every run, whoever creates it
   (the UI or GraphQL, a schedule, a sensor, a backfill, a re-execution), goes
   through `DagsterInstance.submit_run` and so through the instance's run
   coordinator, in the webserver or the daemon. The coordinator reads the run's
   location (`remote_job_origin.location_name`), looks it up in dagfleet's status
   file for that location (`<status_dir>/<location>.json`: repo, env and the commit
   live now) and adds the tags before the run is launched or queued.
2. **When the run executes** (`stamp_run`, called by the run worker). A queued run
   may start after a publish, on the new commit's code server. The run worker is
   started by the code server that executes it and inherits its environment, where
   dagfleet sets DAGFLEET_REPO, DAGFLEET_ENV, DAGFLEET_LOCATION and DAGFLEET_COMMIT.
   The one dagfleet class every run worker loads is the instance's compute log
   manager (`LocationComputeLogManager`, or `LocationS3ComputeLogManager` in the
   rendered deployments), which opens each run's log capture before the first step
   runs; it calls `stamp_run`, which rewrites the tags from that
   environment when they differ. So `dagfleet/commit` ends as the commit whose code
   ran, not the commit live when the run was queued.

A run that fails before any step starts (its code does not load) keeps the tags of
step 1. Nothing here changes user code, and nothing here imports dagfleet: this
module lives in dagfleet-runtime, installed in dagfleet's environment (webserver,
daemon) and in every location's environment (code servers, run workers).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from typing import Any, cast

from dagster import Field, StringSource
from dagster._core.run_coordinator.base import SubmitRunContext
from dagster._core.run_coordinator.queued_run_coordinator import QueuedRunCoordinator
from dagster._core.run_coordinator.sync_in_memory_run_coordinator import (
    SyncInMemoryRunCoordinator,
)
from dagster._core.storage.dagster_run import DagsterRun
from dagster._serdes import ConfigurableClassData

logger = logging.getLogger(__name__)

REPO_TAG = "dagfleet/repo"
ENV_TAG = "dagfleet/env"
LOCATION_TAG = "dagfleet/location"
COMMIT_TAG = "dagfleet/commit"
TAGS = (REPO_TAG, ENV_TAG, LOCATION_TAG, COMMIT_TAG)
# The variables dagfleet sets in every code server's environment, tag by tag.
ENV_VARS = {
    REPO_TAG: "DAGFLEET_REPO",
    ENV_TAG: "DAGFLEET_ENV",
    LOCATION_TAG: "DAGFLEET_LOCATION",
    COMMIT_TAG: "DAGFLEET_COMMIT",
}


def tags_from_environ(environ: Mapping[str, str]) -> dict[str, str]:
    """The tags a run worker's environment names (empty outside a dagfleet location)."""
    if not environ.get("DAGFLEET_LOCATION") or not environ.get("DAGFLEET_COMMIT"):
        return {}
    return {tag: environ[var] for tag, var in ENV_VARS.items() if environ.get(var)}


def tags_from_status(status_dir: str, location: str) -> dict[str, str]:
    """The tags dagfleet's status file of `location` names (empty when unknown)."""
    if not location or "/" in location or location.startswith("."):
        return {}
    try:
        with open(os.path.join(status_dir, f"{location}.json"), encoding="utf-8") as f:
            status = json.load(f)
    except (OSError, ValueError):
        return {}
    if not isinstance(status, dict):
        return {}
    tags = {LOCATION_TAG: location}
    for tag, key in ((REPO_TAG, "repo"), (ENV_TAG, "env"), (COMMIT_TAG, "commit")):
        value = status.get(key)
        if isinstance(value, str) and value:
            tags[tag] = value
    return tags


def missing(run_tags: Mapping[str, str], wanted: Mapping[str, str]) -> dict[str, str]:
    """The wanted tags the run does not already carry with the same value."""
    return {k: v for k, v in wanted.items() if run_tags.get(k) != v}


def stamp_run(instance: Any, run: DagsterRun, environ: Mapping[str, str] | None = None) -> bool:
    """Tag `run` with this process's location and commit; True when tags were written.

    Called in the run worker (and in step processes, which inherit its
    environment). A failure is logged, never raised: tags must not fail a run.
    """
    wanted = tags_from_environ(os.environ if environ is None else environ)
    todo = missing(run.tags, wanted)
    if not todo:
        return False
    try:
        instance.add_run_tags(run.run_id, todo)
    except Exception as exc:
        logger.warning("dagfleet: could not tag run %s with %s: %s", run.run_id, todo, exc)
        return False
    return True


def stamp_run_once(instance: Any, run_id: str, stamped: set[str]) -> None:
    """`stamp_run` for the run `run_id`, once per process (`stamped` remembers the runs).

    What the compute log managers call when they open a run's capture; a run that
    cannot be read is logged, never raised.
    """
    if run_id in stamped:
        return
    stamped.add(run_id)
    try:
        run = instance.get_run_by_id(run_id)
    except Exception as exc:  # tags must never fail a run
        logger.warning("dagfleet: could not read run %s to tag it: %s", run_id, exc)
        return
    if run is not None:
        stamp_run(instance, run)


class _Tagging:
    """The submit-time step shared by both coordinators."""

    _status_dir: str | None
    _instance: Any

    def _tag(self, context: SubmitRunContext) -> SubmitRunContext:
        run = context.dagster_run
        origin = run.remote_job_origin
        if self._status_dir is None or origin is None:
            return context
        todo = missing(run.tags, tags_from_status(self._status_dir, origin.location_name))
        if not todo:
            return context
        try:
            self._instance.add_run_tags(run.run_id, todo)
        except Exception as exc:
            logger.warning("dagfleet: could not tag run %s with %s: %s", run.run_id, todo, exc)
            return context
        fresh = self._instance.get_run_by_id(run.run_id)
        return context._replace(dagster_run=fresh) if fresh is not None else context


class TaggingRunCoordinator(_Tagging, SyncInMemoryRunCoordinator):
    """Dagster's DefaultRunCoordinator that tags each run before launching it."""

    def __init__(
        self, status_dir: str | None = None, inst_data: ConfigurableClassData | None = None
    ) -> None:
        super().__init__(inst_data=inst_data)
        self._status_dir = status_dir

    @classmethod
    def config_type(cls) -> dict[str, Any]:
        return {"status_dir": Field(StringSource, is_required=False)}

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData | None, config_value: Mapping[str, Any]
    ) -> TaggingRunCoordinator:
        return cls(inst_data=inst_data, status_dir=config_value.get("status_dir"))

    def submit_run(self, context: SubmitRunContext) -> DagsterRun:
        return super().submit_run(self._tag(context))


class TaggingQueuedRunCoordinator(_Tagging, QueuedRunCoordinator):
    """Dagster's QueuedRunCoordinator that tags each run before queueing it (so
    `tag_concurrency_limits` may limit by `dagfleet/env` or `dagfleet/repo`)."""

    def __init__(self, status_dir: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._status_dir = status_dir

    @classmethod
    def config_type(cls) -> dict[str, Any]:
        base = cast(Mapping[str, Any], QueuedRunCoordinator.config_type())
        return {**base, "status_dir": Field(StringSource, is_required=False)}

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData, config_value: Mapping[str, Any]
    ) -> TaggingQueuedRunCoordinator:
        rest = {k: v for k, v in config_value.items() if k != "status_dir"}
        coordinator = super().from_config_value(inst_data, rest)
        coordinator._status_dir = config_value.get("status_dir")
        return coordinator

    def submit_run(self, context: SubmitRunContext) -> DagsterRun:
        return super().submit_run(self._tag(context))
