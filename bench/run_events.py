"""Failed run -> RUN_FAILED published: how long the instance watcher takes to tell.

A real instance (SQLite in a temporary DAGSTER_HOME, or a fresh PostgreSQL
database with --postgres), the watcher's thread polling it as in `dagfleet up`,
and N runs of a job whose one op raises, executed in-process against that
instance. The latency of one run is the time the RUN_FAILED event was published
minus the run's end time as the instance recorded it. Prints JSON.

    uv run --frozen python bench/run_events.py --runs 5
    uv run --frozen python bench/run_events.py --runs 5 --postgres
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import yaml
from dagster import DagsterInstance, job, op

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from dagfleet.events import Event, EventBus, Kind  # noqa: E402
from dagfleet.watch import InstanceWatcher  # noqa: E402

QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


@op
def late() -> None:
    raise RuntimeError("the data is late")


@job
def failing() -> None:
    late()


def storage(home: Path, postgres: str | None) -> dict[str, Any]:
    if postgres is None:
        return {"sqlite": {"base_dir": str(home / "storage")}}
    pg = {
        "username": "postgres",
        "hostname": "127.0.0.1",
        "port": 5432,
        "db_name": postgres,
        "scheme": "postgresql+psycopg2",
    }
    return {"postgres": {"postgres_db": pg}}


def create_database() -> str:
    import psycopg2

    name = f"dagfleet_bench_{uuid.uuid4().hex[:8]}"
    conn = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres")
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    conn.close()
    return name


def drop_database(name: str) -> None:
    import psycopg2

    conn = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres")
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    conn.close()


def measure(home: Path, runs: int, interval: float) -> dict[str, Any]:
    bus = EventBus()
    published: dict[str, float] = {}
    arrived = threading.Condition()

    def on_event(event: Event) -> None:
        if event.kind is Kind.RUN_FAILED:
            with arrived:
                published[event.data["run_id"]] = time.time()
                arrived.notify_all()

    bus.subscribe(on_event)
    instance = DagsterInstance.from_config(str(home))
    watcher = InstanceWatcher(home, bus, lambda _loc: ("", ""), interval=interval)
    watcher.start()
    latencies: list[float] = []
    try:
        while watcher.polls < 1:
            time.sleep(0.05)
        for _ in range(runs):
            result = failing.execute_in_process(
                instance=instance, raise_on_error=False, run_config=QUIET
            )
            run_id = result.run_id
            with arrived:
                arrived.wait_for(lambda run_id=run_id: run_id in published, timeout=60)
            record = instance.get_run_record_by_id(run_id)
            if record is None or record.end_time is None or run_id not in published:
                raise SystemExit(f"run {run_id}: no RUN_FAILED within 60 s")
            latencies.append(published[run_id] - record.end_time)
            time.sleep(interval * 0.37)  # do not always finish at the same point of a poll
    finally:
        watcher.stop()
        instance.dispose()
    return {
        "runs": runs,
        "poll_interval_seconds": interval,
        "p50_seconds": round(statistics.median(latencies), 3),
        "max_seconds": round(max(latencies), 3),
        "min_seconds": round(min(latencies), 3),
        "latencies_seconds": [round(x, 3) for x in latencies],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="failing runs to time (default 5)")
    parser.add_argument(
        "--interval", type=float, default=1.0, help="the watcher's poll interval (default 1 s)"
    )
    parser.add_argument(
        "--postgres",
        action="store_true",
        help="store the instance in a fresh database on PostgreSQL at 127.0.0.1:5432",
    )
    args = parser.parse_args(argv)
    database = create_database() if args.postgres else None
    try:
        with tempfile.TemporaryDirectory() as tmp:
            home = Path(tmp) / "home"
            home.mkdir()
            config = {"telemetry": {"enabled": False}, "storage": storage(home, database)}
            (home / "dagster.yaml").write_text(yaml.safe_dump(config))
            result = measure(home, args.runs, args.interval)
    finally:
        if database is not None:
            drop_database(database)
    result["storage"] = "postgres" if database else "sqlite"
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
