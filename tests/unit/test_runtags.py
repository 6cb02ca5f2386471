"""Runs know their commit: the tags' sources (status files, the run worker's environment)."""

from __future__ import annotations

import json
from pathlib import Path

from dagfleet_runtime.runtags import (
    COMMIT_TAG,
    TAGS,
    missing,
    stamp_run,
    tags_from_environ,
    tags_from_status,
)
from dagster import DagsterInstance, job, op

WORKER = {
    "DAGFLEET_REPO": "sales",
    "DAGFLEET_ENV": "prod",
    "DAGFLEET_LOCATION": "sales-prod",
    "DAGFLEET_COMMIT": "b" * 40,
}


def test_tags_from_status_name_the_live_commit(tmp_path: Path) -> None:
    status = {"location": "sales-prod", "repo": "sales", "env": "prod", "commit": "a" * 40}
    (tmp_path / "sales-prod.json").write_text(json.dumps(status))
    assert tags_from_status(str(tmp_path), "sales-prod") == {
        "dagfleet/repo": "sales",
        "dagfleet/env": "prod",
        "dagfleet/location": "sales-prod",
        "dagfleet/commit": "a" * 40,
    }
    assert tags_from_status(str(tmp_path), "other-prod") == {}
    assert tags_from_status(str(tmp_path), "../sales-prod") == {}
    (tmp_path / "broken-prod.json").write_text("{")
    assert tags_from_status(str(tmp_path), "broken-prod") == {}


def test_tags_from_environ_need_a_location_and_a_commit() -> None:
    assert sorted(tags_from_environ(WORKER)) == sorted(TAGS)
    assert tags_from_environ({"DAGFLEET_LOCATION": "sales-prod"}) == {}
    assert tags_from_environ({}) == {}


def test_missing_keeps_only_what_differs() -> None:
    assert missing({COMMIT_TAG: "a"}, {COMMIT_TAG: "a", "dagfleet/env": "prod"}) == {
        "dagfleet/env": "prod"
    }


@op
def noop() -> None:
    pass


@job
def tagged() -> None:
    noop()


def test_stamp_run_replaces_the_queued_commit_with_the_executed_one() -> None:
    with DagsterInstance.ephemeral() as instance:
        run = instance.create_run_for_job(tagged, tags={COMMIT_TAG: "a" * 40})
        assert stamp_run(instance, run, WORKER) is True
        stamped = instance.get_run_by_id(run.run_id)
        assert stamped is not None
        assert {t: stamped.tags[t] for t in TAGS} == tags_from_environ(WORKER)
        assert stamp_run(instance, stamped, WORKER) is False  # already right: no write
        assert stamp_run(instance, stamped, {}) is False  # outside dagfleet: nothing
