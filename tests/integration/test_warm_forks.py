"""Warm forks (fleet.yaml `instance.warm_forks`): code servers forked from a zygote per
env, run workers and steps forked from the server's forkserver; off, the stock path.

Each op writes where it ran: its pid, its parent, its own command line and its
parent's. A forked process keeps the command line of the zygote it descends from
(`python -m dagfleet_runtime.warm`); a spawned one is `python -c ... spawn_main`.
"""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path
from typing import Any

import psutil

from tests.support.fleetproc import RunningFleet, dagfleet_processes, wait_for, write_fleet
from tests.support.gitrepo import CodeRepo

ZYGOTE = "dagfleet_runtime.warm"

DEFS = textwrap.dedent(
    """
    import json
    import os
    import threading
    from pathlib import Path

    from dagster import Definitions, in_process_executor, job, op

    RECORDS = Path({records!r})


    def where(what):
        def cmdline(pid):
            return Path(f"/proc/{{pid}}/cmdline").read_bytes().replace(b"\\0", b" ").decode()

        record = {{
            "what": what,
            "pid": os.getpid(),
            "ppid": os.getppid(),
            "cmdline": cmdline(os.getpid()),
            "parent_cmdline": cmdline(os.getppid()),
            "threads": len(os.listdir("/proc/self/task")),
            "env": os.environ.get("DAGFLEET_LOCATION", ""),
        }}
        with RECORDS.open("a") as fh:
            fh.write(json.dumps(record) + "\\n")


    @op
    def first() -> int:
        where("first")
        return 1


    @op
    def second(n: int) -> int:
        where("second")
        return n + 1


    @op
    def third(n: int) -> int:
        where("third")
        assert n == 2
        return n + 1


    @job
    def three_steps():
        third(second(first()))


    @op
    def alone() -> None:
        where("alone")


    @job(executor_def=in_process_executor)
    def in_process():
        alone()


    defs = Definitions(jobs=[three_steps, in_process])
    """
)


def records(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def start_demo(
    tmp_path: Path, code_repo: CodeRepo, start_fleet: Any, **instance: Any
) -> tuple[RunningFleet, Path]:
    rec = tmp_path / "records.jsonl"
    code_repo.commit({"demo/definitions.py": DEFS.format(records=str(rec))}, "where ops run")
    code_repo.push("A")
    fleet_dir = write_fleet(
        tmp_path / "fleet",
        {"demo": {"git_url": code_repo.url, "module_name": "demo.definitions"}},
        environments=[{"name": "A", "branch": "A"}],
        instance=instance,
    )
    fleet = start_fleet(fleet_dir, extra=["--no-daemon"])
    fleet.wait_loaded({"demo-A"})
    return fleet, rec


def running(proc: psutil.Process) -> bool:
    try:
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def run(fleet: RunningFleet, job: str) -> None:
    run_id = fleet.gql.launch("demo-A", job)
    assert fleet.gql.wait_run(run_id) == "SUCCESS", fleet.log()[-3000:]


def test_servers_runs_and_steps_are_forked(
    tmp_path: Path, code_repo: CodeRepo, start_fleet: Any
) -> None:
    fleet, rec = start_demo(tmp_path, code_repo, start_fleet)
    server = psutil.Process(fleet.pid("demo-A"))
    zygote = server.parent()
    assert zygote is not None and ZYGOTE in " ".join(zygote.cmdline())
    assert server.pid == os.getpgid(server.pid), "the server leads its own process group"
    assert (server.name(), zygote.name()) == ("dagfleet-server", "dagfleet-warm")
    assert "(forked)" in (fleet.state / "logs" / "demo-A.log").read_text()

    run(fleet, "three_steps")
    steps = {r["what"]: r for r in records(rec)}
    assert set(steps) == {"first", "second", "third"}
    forkservers = {r["ppid"] for r in steps.values()}
    assert len(forkservers) == 1, "every step comes from the one forkserver of the server"
    forkserver = psutil.Process(forkservers.pop())
    assert forkserver.ppid() == server.pid
    for step in steps.values():
        assert ZYGOTE in step["cmdline"], step  # forked, not a new interpreter
        assert "spawn_main" not in step["cmdline"]
        assert step["threads"] >= 1

    run(fleet, "in_process")
    alone = next(r for r in records(rec) if r["what"] == "alone")
    assert alone["ppid"] == forkserver.pid  # the run worker itself was forked
    assert ZYGOTE in alone["cmdline"]

    fleet.stop()
    assert not dagfleet_processes(fleet.state), "nothing forked outlives the fleet"


def test_switched_off_runs_spawn_as_stock_dagster(
    tmp_path: Path, code_repo: CodeRepo, start_fleet: Any
) -> None:
    fleet, rec = start_demo(tmp_path, code_repo, start_fleet, warm_forks=False)
    server = psutil.Process(fleet.pid("demo-A"))
    assert ZYGOTE not in " ".join(server.cmdline())
    run(fleet, "three_steps")
    steps = records(rec)
    assert len(steps) == 3
    for step in steps:
        assert "spawn_main" in step["cmdline"], step
        assert ZYGOTE not in step["cmdline"]


def test_dead_warm_parents_are_not_a_dead_location(
    tmp_path: Path, code_repo: CodeRepo, start_fleet: Any
) -> None:
    """A server's forkserver killed: its next runs start Python's own forkserver and
    succeed. Then the zygote killed: its server keeps serving and running. Then a stop
    while a run executes leaves nothing behind."""
    fleet, rec = start_demo(tmp_path, code_repo, start_fleet)
    server = psutil.Process(fleet.pid("demo-A"))
    forkserver = next(c for c in server.children() if c.name() == "dagfleet-runs")
    forkserver.kill()  # a zombie until the server next asks for it: not waited here
    wait_for(lambda: not running(forkserver), 30, "the forkserver to die")
    run(fleet, "three_steps")
    assert {r["what"] for r in records(rec)} == {"first", "second", "third"}

    zygote = server.parent()
    assert zygote is not None
    zygote.kill()
    zygote.wait(10)
    assert server.is_running()
    run(fleet, "in_process")
    assert "alone" in {r["what"] for r in records(rec)}
    assert fleet.pid("demo-A") == server.pid

    count = len(records(rec))
    fleet.gql.launch("demo-A", "three_steps")
    wait_for(lambda: len(records(rec)) > count, 120, "the next run's first step")
    fleet.stop()
    assert not dagfleet_processes(fleet.state)
