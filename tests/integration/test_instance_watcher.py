"""The instance watcher against real instances (SQLite and PostgreSQL), real runs, a
real sensor tick and a real dagster-daemon: the right events, each exactly once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from dagster import DagsterInstance, job, op

from dagfleet.events import Event, EventBus, Kind
from dagfleet.watch import InstanceWatcher
from tests.support.fleetproc import wait_for

TAGS = {"dagfleet/location": "sales-prod"}


def resolve(location: str) -> tuple[str, str]:
    return ("sales", "prod") if location == "sales-prod" else ("", "")


@op
def fine() -> None:
    pass


@op
def broken() -> None:
    raise RuntimeError("the data is late")


@job
def good_job() -> None:
    fine()


@job
def bad_job() -> None:
    broken()


def write_home(home: Path, storage: dict[str, Any]) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    config = {"telemetry": {"enabled": False}, "storage": storage}
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    return home


@pytest.fixture(params=["sqlite", "postgres"])
def home(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    if request.param == "sqlite":
        return write_home(tmp_path / "home", {"sqlite": {"base_dir": str(tmp_path / "storage")}})
    database = request.getfixturevalue("database")
    pg = {
        "username": "postgres",
        "hostname": "127.0.0.1",
        "port": 5432,
        "db_name": database,
        "scheme": "postgresql+psycopg2",
    }
    return write_home(tmp_path / "home", {"postgres": {"postgres_db": pg}})


@pytest.fixture
def instance(home: Path) -> Iterator[DagsterInstance]:
    inst = DagsterInstance.from_config(str(home))
    try:
        yield inst
    finally:
        inst.dispose()


def watcher_for(home: Path, **kwargs: Any) -> tuple[InstanceWatcher, list[Event]]:
    bus = EventBus()
    events: list[Event] = []
    bus.subscribe(events.append)
    return InstanceWatcher(home, bus, resolve, **kwargs), events


def kinds(events: list[Event], run_id: str) -> list[Kind]:
    return [e.kind for e in events if e.data.get("run_id") == run_id]


def test_runs_publish_their_start_and_end_once(home: Path, instance: DagsterInstance) -> None:
    before = good_job.execute_in_process(instance=instance, tags=TAGS)
    watcher, events = watcher_for(home)
    try:
        watcher.poll()  # the first pass remembers, and publishes nothing
        assert events == []
        ok = good_job.execute_in_process(instance=instance, tags=TAGS)
        bad = bad_job.execute_in_process(instance=instance, tags=TAGS, raise_on_error=False)
        queued = instance.create_run_for_job(good_job, tags=TAGS)
        instance.report_run_canceled(queued)
        watcher.poll()
        watcher.poll()  # nothing new: nothing published again
        # Tags written later (the run worker's) update a run: still no new event.
        instance.add_run_tags(ok.run_id, {"dagfleet/commit": "c" * 40})
        watcher.poll()
    finally:
        watcher.stop()

    assert kinds(events, before.run_id) == []
    assert kinds(events, ok.run_id) == [Kind.RUN_STARTED, Kind.RUN_SUCCEEDED]
    assert kinds(events, bad.run_id) == [Kind.RUN_STARTED, Kind.RUN_FAILED]
    assert kinds(events, queued.run_id) == [Kind.RUN_CANCELED]
    assert len(events) == 5
    failed = next(e for e in events if e.kind is Kind.RUN_FAILED)
    assert (failed.location, failed.repo, failed.env) == ("sales-prod", "sales", "prod")
    assert failed.data["job"] == "bad_job"
    assert failed.data["location"] == "sales-prod"
    assert json.loads(failed.data["tags"])["dagfleet/location"] == "sales-prod"
    assert failed.data["start_time"] and failed.data["end_time"]


def test_the_thread_publishes_and_stops(home: Path, instance: DagsterInstance) -> None:
    watcher, events = watcher_for(home, interval=0.1)
    watcher.start()
    try:
        wait_for(lambda: watcher.polls >= 1, 60, "the first poll")
        run = bad_job.execute_in_process(instance=instance, tags=TAGS, raise_on_error=False)
        wait_for(lambda: Kind.RUN_FAILED in kinds(events, run.run_id), 60, "RUN_FAILED")
    finally:
        watcher.stop()
    assert kinds(events, run.run_id) == [Kind.RUN_STARTED, Kind.RUN_FAILED]


SENSOR_CODE = textwrap.dedent(
    """
    from dagster import DefaultSensorStatus, Definitions, job, op, sensor


    @op
    def nothing() -> None:
        pass


    @job
    def target() -> None:
        nothing()


    @sensor(job=target, minimum_interval_seconds=1, default_status=DefaultSensorStatus.RUNNING)
    def flaky(context):
        raise RuntimeError("the upstream API said 503")


    defs = Definitions(jobs=[target], sensors=[flaky])
    """
)


def start_daemon(home: Path, workspace: Path, log: Path) -> subprocess.Popen[bytes]:
    daemon = Path(sys.executable).parent / "dagster-daemon"
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    with log.open("ab") as out:
        return subprocess.Popen(
            [str(daemon), "run", "-w", str(workspace)],
            cwd=workspace.parent,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop_daemon(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(30)


@pytest.mark.slow
def test_failing_sensor_tick_and_daemon_down_and_up(tmp_path: Path) -> None:
    home = write_home(tmp_path / "home", {"sqlite": {"base_dir": str(tmp_path / "storage")}})
    code = tmp_path / "code"
    code.mkdir()
    (code / "defs.py").write_text(SENSOR_CODE)
    workspace = code / "workspace.yaml"
    entry = {"python_file": {"relative_path": "defs.py", "location_name": "sales-prod"}}
    workspace.write_text(yaml.safe_dump({"load_from": [entry]}))
    watcher, events = watcher_for(home, daemon_expected=lambda: True, daemon_tolerance=40)
    log = tmp_path / "daemon.log"
    daemon = start_daemon(home, workspace, log)
    try:
        watcher.poll()

        def failed_tick() -> bool:
            watcher.poll()
            return any(e.kind is Kind.TICK_FAILED for e in events)

        wait_for(failed_tick, 180, f"TICK_FAILED (daemon log: {log})", interval=0.5)
        tick = next(e for e in events if e.kind is Kind.TICK_FAILED)
        assert tick.data["name"] == "flaky"
        assert tick.data["type"] == "sensor"
        assert (tick.location, tick.repo, tick.env) == ("sales-prod", "sales", "prod")
        assert "the upstream API said 503" in tick.data["error"]
        assert "\n" not in tick.data["error"]
        ids = [e.data["tick_id"] for e in events if e.kind is Kind.TICK_FAILED]
        assert len(ids) == len(set(ids))  # each tick once
        assert Kind.DAEMON_DOWN not in [e.kind for e in events]

        stop_daemon(daemon)

        def seen(kind: Kind) -> bool:
            watcher.poll()
            return kind in [e.kind for e in events]

        wait_for(lambda: seen(Kind.DAEMON_DOWN), 180, "DAEMON_DOWN", interval=0.5)
        daemon = start_daemon(home, workspace, log)
        wait_for(lambda: seen(Kind.DAEMON_UP), 180, "DAEMON_UP", interval=0.5)
    finally:
        stop_daemon(daemon)
        watcher.stop()
    daemon_events = [e.kind for e in events if e.kind in (Kind.DAEMON_DOWN, Kind.DAEMON_UP)]
    assert daemon_events == [Kind.DAEMON_DOWN, Kind.DAEMON_UP]
