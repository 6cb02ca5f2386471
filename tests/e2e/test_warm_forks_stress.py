"""Scenario: 200 runs across 10 locations on warm forks, against the stock spawn path.

Five repos in environments A and B (10 locations) serve a 3-step job on Dagster's
default multiprocess executor and a 1-step in-process job. 200 runs are launched
through the webserver, at most 8 in flight: every run succeeds (no hang), each
records the value its last step computed and the processes it ran in, the values
are the ones the same jobs give on a fleet with `warm_forks: false`, every step
ran in a forked process, and once the runs are done no run worker or step process
is left; after stop, nothing of the fleet is.
"""

from __future__ import annotations

import json
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.fleetproc import RunningFleet, dagfleet_processes, wait_for, write_fleet
from tests.support.gitrepo import CodeRepo

pytestmark = pytest.mark.slow

REPOS = ("r0", "r1", "r2", "r3", "r4")
RUNS = 200
IN_FLIGHT = 8

DEFS = textwrap.dedent(
    """
    import json
    import os
    import zlib
    from pathlib import Path

    from dagster import Definitions, OpExecutionContext, in_process_executor, job, op

    RECORDS = Path({records!r})
    LOCATION = os.environ.get("DAGFLEET_LOCATION", "?")


    def cmdline():
        return Path("/proc/self/cmdline").read_bytes().replace(b"\\0", b" ").decode()


    @op
    def seed() -> int:
        return zlib.crc32(LOCATION.encode()) % 1000


    @op
    def square(n: int) -> int:
        return n * n


    @op
    def finish(context: OpExecutionContext, n: int) -> None:
        record = {{"run": context.run_id, "location": LOCATION, "value": n + 7,
                  "cmdline": cmdline()}}
        with RECORDS.open("a") as fh:
            fh.write(json.dumps(record) + "\\n")


    @job
    def three_steps():
        finish(square(seed()))


    @op
    def single(context: OpExecutionContext) -> None:
        finish_value = zlib.crc32(LOCATION.encode()) % 1000
        record = {{"run": context.run_id, "location": LOCATION, "value": -finish_value,
                  "cmdline": cmdline()}}
        with RECORDS.open("a") as fh:
            fh.write(json.dumps(record) + "\\n")


    @job(executor_def=in_process_executor)
    def in_process():
        single()


    defs = Definitions(jobs=[three_steps, in_process])
    """
)


def make_fleet(tmp_path: Path, records: Path, warm: bool, repos: tuple[str, ...]) -> Path:
    entries: dict[str, dict[str, Any]] = {}
    for name in repos:
        repo = CodeRepo(tmp_path / "remotes", name=name)
        for branch in ("A", "B"):
            repo.commit({"demo/definitions.py": DEFS.format(records=str(records))}, "jobs", branch)
            repo.push(branch)
        entries[name] = {"git_url": repo.url, "module_name": "demo.definitions"}
    return write_fleet(tmp_path / "fleet", entries, instance={"warm_forks": warm})


def read(records: Path) -> list[dict[str, Any]]:
    if not records.exists():
        return []
    return [json.loads(line) for line in records.read_text().splitlines() if line.strip()]


def run_all(fleet: RunningFleet, plan: list[tuple[str, str]]) -> dict[str, str]:
    """Launch every (location, job) of `plan`, at most IN_FLIGHT at once; run id -> status."""
    pending = list(plan)
    running: dict[str, float] = {}
    finished: dict[str, str] = {}
    while pending or running:
        while pending and len(running) < IN_FLIGHT:
            location, job = pending.pop()
            running[fleet.gql.launch(location, job)] = time.monotonic()
        for run_id, started in list(running.items()):
            status = fleet.gql.run_status(run_id)
            if status in ("SUCCESS", "FAILURE", "CANCELED"):
                finished[run_id] = status
                del running[run_id]
            else:
                assert time.monotonic() - started < 300, f"run {run_id} hangs ({status})"
        time.sleep(0.2)
    return finished


def values(records: list[dict[str, Any]]) -> dict[str, set[int]]:
    out: dict[str, set[int]] = {}
    for rec in records:
        out.setdefault(rec["location"], set()).add(rec["value"])
    return out


def test_200_runs_across_10_locations(tmp_path: Path, start_fleet: Any) -> None:
    # The stock path first, one repo (2 locations), as the reference for the values.
    cold_records = tmp_path / "cold" / "records.jsonl"
    cold_dir = make_fleet(tmp_path / "cold", cold_records, warm=False, repos=REPOS[:1])
    cold = start_fleet(cold_dir, extra=["--no-daemon"])
    cold.wait_loaded({"r0-A", "r0-B"})
    plan = [(loc, job) for loc in ("r0-A", "r0-B") for job in ("three_steps", "in_process")]
    assert set(run_all(cold, plan).values()) == {"SUCCESS"}
    cold.stop()
    reference = values(read(cold_records))

    records = tmp_path / "warm" / "records.jsonl"
    fleet_dir = make_fleet(tmp_path / "warm", records, warm=True, repos=REPOS)
    fleet = start_fleet(fleet_dir, extra=["--no-daemon"])
    locations = sorted(f"{repo}-{env}" for repo in REPOS for env in ("A", "B"))
    fleet.wait_loaded(set(locations))
    idle = {p.pid for p in dagfleet_processes(fleet.state)}

    jobs = ("three_steps", "in_process")
    plan = [(locations[i % 10], jobs[(i // 10) % 2]) for i in range(RUNS)]
    started = time.monotonic()
    statuses = run_all(fleet, plan)
    print(f"{RUNS} runs across 10 locations in {time.monotonic() - started:.1f}s")
    assert len(statuses) == RUNS
    assert set(statuses.values()) == {"SUCCESS"}, statuses

    recs = read(records)
    assert {r["run"] for r in recs} == set(statuses), "every run recorded its result"
    got = values(recs)
    assert set(got) == set(locations)
    for location in ("r0-A", "r0-B"):
        assert got[location] == reference[location], "the same results as the spawn path"
    for rec in recs:
        assert "dagfleet_runtime.warm" in rec["cmdline"], rec  # forked, not spawned

    def settled() -> bool:
        return {p.pid for p in dagfleet_processes(fleet.state)} <= idle

    wait_for(settled, 60, "run workers and steps to be gone")
    fleet.stop()
    assert not dagfleet_processes(fleet.state)
