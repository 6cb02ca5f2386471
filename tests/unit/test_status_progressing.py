"""A publish in progress (`progressing_commit`) beside the commit that serves
(status.conditions, status.liveness)."""

from __future__ import annotations

import json

import pytest

from dagfleet.status import LocationStatus, Reason
from dagfleet.status.liveness import as_stopped

pytestmark = pytest.mark.unit
OLD, NEW = "a" * 40, "b" * 40


def loading() -> LocationStatus:
    s = LocationStatus(location="sales-A", repo="sales", env="A", commit=OLD, pid=4242)
    s = s.with_condition("Serving", "True", Reason.CODE_SERVER_RUNNING, f"serving {OLD}")
    s = s.with_condition("Synced", "False", Reason.PROGRESSING, f"loading definitions of {NEW}")
    return s.model_copy(update={"progressing_commit": NEW})


def test_a_loading_commit_is_named_beside_the_one_that_serves() -> None:
    s = loading()
    doc = json.loads(s.model_dump_json())
    assert doc["commit"] == OLD and doc["progressing_commit"] == NEW
    assert s.ready  # the old commit still serves while the new one loads
    ready = s.condition("Ready")
    assert ready is not None and "newer commit not published: Progressing" in ready.message


def test_no_publish_is_in_progress_by_default_and_files_without_the_field_load() -> None:
    old_file = {"location": "sales-A", "repo": "sales", "env": "A", "commit": OLD}
    assert LocationStatus.model_validate(old_file).progressing_commit is None


def test_a_stopped_fleet_loads_nothing() -> None:
    stopped = as_stopped(loading())
    assert stopped.progressing_commit is None and stopped.commit == OLD
    assert as_stopped(stopped).progressing_commit is None
