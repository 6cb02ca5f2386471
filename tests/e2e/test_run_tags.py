"""Scenario: every run knows its repo, environment, location and commit.

One fleet with the daemon and a run queue of one: a run launched by hand, a run a
sensor requests on its first tick and the runs of a backfill each carry the four
`dagfleet/*` tags; a run queued behind a running one, then a publish, then the
run executes on the new code server: its `dagfleet/commit` names the new commit.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

from tests.support.fleetproc import RunningFleet, wait_for, write_fleet
from tests.support.gitrepo import CodeRepo

TAGS = ("dagfleet/repo", "dagfleet/env", "dagfleet/location", "dagfleet/commit")

DEFS = textwrap.dedent(
    """
    import os
    import time
    from pathlib import Path

    from dagster import (
        DefaultSensorStatus, Definitions, RunRequest, StaticPartitionsDefinition,
        in_process_executor, job, op, sensor,
    )

    RELEASE = Path({release!r})


    @op
    def hello() -> None:
        print("commit", os.environ.get("DAGFLEET_COMMIT"))


    @job
    def tag_job() -> None:
        hello()


    @op
    def hold() -> None:
        deadline = time.monotonic() + 300
        while not RELEASE.exists() and time.monotonic() < deadline:
            time.sleep(0.2)


    @job
    def wait_job() -> None:
        hold()


    @job(partitions_def=StaticPartitionsDefinition(["p1", "p2"]))
    def part_job() -> None:
        hello()


    RUNNING = DefaultSensorStatus.RUNNING


    @sensor(job=tag_job, minimum_interval_seconds=1, default_status=RUNNING)  # {marker}
    def first_tick(context):
        return RunRequest(run_key="first")


    defs = Definitions(
        jobs=[tag_job, wait_job, part_job], sensors=[first_tick], executor=in_process_executor
    )
    """
)

RUN_TAGS = """
query($id: ID!) {
  runOrError(runId: $id) { __typename ... on Run { status tags { key value } } }
}"""

RUNS = """
query($filter: RunsFilter) {
  runsOrError(filter: $filter) { ... on Runs { results { runId status tags { key value } } } }
}"""

BACKFILL = """
mutation($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
  }
}"""


def run_tags(fleet: RunningFleet, run_id: str) -> dict[str, str]:
    run = fleet.gql.query(RUN_TAGS, {"id": run_id})["runOrError"]
    return {t["key"]: t["value"] for t in run["tags"]}


def runs_tagged(fleet: RunningFleet, key: str, value: str) -> list[dict[str, Any]]:
    data = fleet.gql.query(RUNS, {"filter": {"tags": [{"key": key, "value": value}]}})
    return list(data["runsOrError"]["results"])


def dagfleet_tags(tags: dict[str, str]) -> dict[str, str]:
    return {k: tags.get(k, "") for k in TAGS}


def test_runs_know_their_commit(tmp_path: Path, code_repo: CodeRepo, start_fleet) -> None:
    release = tmp_path / "release"
    first = code_repo.commit(
        {"demo/definitions.py": DEFS.format(release=str(release), marker="v1")}, "tagged jobs"
    )
    code_repo.push("A")
    fleet_dir = write_fleet(
        tmp_path / "fleet",
        {"demo": {"git_url": code_repo.url, "module_name": "demo.definitions", "poll_interval": 1}},
        environments=[{"name": "A", "branch": "A"}],
        instance={"run_queue": {"max_concurrent_runs": 1, "dequeue_interval_seconds": 1}},
    )
    fleet = start_fleet(fleet_dir)
    fleet.wait_loaded({"demo-A"})
    fleet.wait_serving("demo-A", first)
    expected = {
        "dagfleet/repo": "demo",
        "dagfleet/env": "A",
        "dagfleet/location": "demo-A",
        "dagfleet/commit": first,
    }

    # A sensor's run (the daemon submits it on the sensor's first tick).
    sensor_runs = wait_for(
        lambda: [
            r
            for r in runs_tagged(fleet, "dagster/sensor_name", "first_tick")
            if r["status"] == "SUCCESS"
        ],
        240,
        "the sensor's run to succeed",
    )
    assert dagfleet_tags({t["key"]: t["value"] for t in sensor_runs[0]["tags"]}) == expected

    # A run launched by hand.
    manual = fleet.gql.launch("demo-A", "tag_job")
    assert fleet.gql.wait_run(manual) == "SUCCESS"
    assert dagfleet_tags(run_tags(fleet, manual)) == expected
    # dagfleet's instance watcher saw it (it logs every event it publishes).
    wait_for(
        lambda: f"run_succeeded demo-A: run {manual[:8]} of tag_job" in fleet.log(),
        60,
        "the watcher's RUN_SUCCEEDED",
    )

    # A backfill's runs (the daemon's backfill loop submits them).
    selector = {
        "partitionSetName": "part_job_partition_set",
        "repositorySelector": {
            "repositoryLocationName": "demo-A",
            "repositoryName": "__repository__",
        },
    }
    result = fleet.gql.query(
        BACKFILL, {"params": {"selector": selector, "partitionNames": ["p1", "p2"]}}
    )["launchPartitionBackfill"]
    assert result["__typename"] == "LaunchBackfillSuccess", result
    backfill_runs = wait_for(
        lambda: (
            len(
                done := [
                    r
                    for r in runs_tagged(fleet, "dagster/backfill", result["backfillId"])
                    if r["status"] == "SUCCESS"
                ]
            )
            == 2
            and done
        ),
        240,
        "the backfill's two runs to succeed",
    )
    for run in backfill_runs:
        assert dagfleet_tags({t["key"]: t["value"] for t in run["tags"]}) == expected

    # A run queued on the first commit that executes after the second is published.
    holder = fleet.gql.launch("demo-A", "wait_job")
    wait_for(lambda: fleet.gql.run_status(holder) == "STARTED", 120, "the holding run to start")
    queued = fleet.gql.launch("demo-A", "tag_job")
    assert fleet.gql.run_status(queued) == "QUEUED"
    assert run_tags(fleet, queued)["dagfleet/commit"] == first  # the commit live when queued
    second = code_repo.commit(
        {"demo/definitions.py": DEFS.format(release=str(release), marker="v2")}, "second"
    )
    code_repo.push("A")
    fleet.wait_serving("demo-A", second, timeout=180)
    assert fleet.gql.run_status(queued) == "QUEUED"
    release.write_text("go")
    assert fleet.gql.wait_run(holder) == "SUCCESS"
    assert fleet.gql.wait_run(queued) == "SUCCESS"
    assert dagfleet_tags(run_tags(fleet, holder)) == expected  # it ran on the first commit
    assert dagfleet_tags(run_tags(fleet, queued)) == {**expected, "dagfleet/commit": second}
