"""Run latency (issue 17): launch -> SUCCESS of (a) a 3-step job on Dagster's default
multiprocess executor (each step its own process) and (b) the same 3 steps on the
in-process executor, --runs times each (default 10) after --warmup untimed runs.

Modes, all on one location (demo-A) of the same code, launched through the webserver's
GraphQL `launchRun` as the UI does, one run at a time. All modes are up together and
their runs interleaved (round i runs the job once in each mode, the first mode rotating),
so each meets the same background load on a shared machine; --sequential brings up one
mode at a time instead:
- warm: `dagfleet up --no-daemon` (a fleet directory of its own, the same remote) with
  fleet.yaml `instance.warm_forks: true` (run workers and steps forked from the
  location's preloaded forkserver once the runtime has them);
- cold: the same with `warm_forks: false`, today's path (a fresh interpreter per run worker
  and per step, as Dagster's gRPC server and multiprocess executor start them);
- stock: no dagfleet. `dagster api grpc` for the same checkout in the same Python
  environment dagfleet built for it, and `dagster-webserver` with a workspace.yaml
  pointing at it, in a DAGSTER_HOME of the same style (SQLite storage, telemetry off,
  Dagster's DefaultRunCoordinator and DefaultRunLauncher: dagfleet's coordinator is the
  same one plus run tags). No daemon in any mode: none of these runs needs it.

One run's latency is the run's end time as the instance recorded it (its RUN_SUCCESS
event) minus the wall-clock time just before the launch request; launch_to_start is
the same up to the run's start time (the run worker is up and has begun). Targets
(2-core machine): 3-step multiprocess p50 <= 1.5 s (stock about 7.2 s), in-process
p50 <= 0.8 s. Ratios are against stock, measured in the same run. Prints one JSON object.

    uv run --frozen python bench/runs.py [--runs 10] [--warmup 1] [--modes warm,cold,stock]
    uv run --frozen python bench/runs.py --runs 3 --sequential
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import psutil
import yaml
from _fleet import (
    CodeRepo,
    RunningFleet,
    free_port,
    latency_summary,
    median,
    ratio,
    running,
    tree_processes,
    wait_for,
    write_fleet,
)

from tests.support.dagster_client import FINISHED, DagsterTestClient

MODES = ("warm", "cold", "stock")
LOCATION = "demo-A"
JOBS = {"multiprocess_3_step": "multi_job", "in_process": "inproc_job"}
STOCK_LOGS = ("stock-grpc.log", "stock-webserver.log")
TARGETS = {"multiprocess_3_step_p50_seconds": 1.5, "in_process_p50_seconds": 0.8}

RUN_DEFS = """from dagster import (
    Definitions,
    asset,
    define_asset_job,
    in_process_executor,
    multiprocess_executor,
)


@asset
def one() -> int:
    return 1


@asset
def two(one: int) -> int:
    return one + 1


@asset
def three(two: int) -> int:
    return two + 1


STEPS = ["one", "two", "three"]
multi_job = define_asset_job("multi_job", selection=STEPS, executor_def=multiprocess_executor)
inproc_job = define_asset_job("inproc_job", selection=STEPS, executor_def=in_process_executor)
defs = Definitions(assets=[one, two, three], jobs=[multi_job, inproc_job])
"""

RUN_TIMES = """
query($id: ID!) {
  runOrError(runId: $id) {
    __typename
    ... on Run { status creationTime startTime endTime }
  }
}"""


RUN_EVENTS = """
query($id: ID!) {
  logsForRun(runId: $id) {
    __typename
    ... on EventConnection { events { __typename ... on MessageEvent { timestamp } } }
  }
}"""
# Where a run's time goes: seconds from the launch request to the first event of each
# kind (the last one for step successes), as the run's own event log recorded them.
PHASES = {
    "RunStartingEvent": "starting",  # the launcher handed the run to the code server
    "RunStartEvent": "worker_started",  # the run worker is up and executing
    "ExecutionStepStartEvent": "first_step_started",
    "ExecutionStepSuccessEvent": "last_step_succeeded",
    "RunSuccessEvent": "succeeded",
}


def run_phases(gql: DagsterTestClient, run_id: str, requested: float) -> dict[str, float]:
    data = gql.query(RUN_EVENTS, {"id": run_id})["logsForRun"]
    phases: dict[str, float] = {}
    for event in data.get("events", []):
        name = PHASES.get(event["__typename"])
        if name is None or not event.get("timestamp"):
            continue
        at = float(event["timestamp"]) / 1000 - requested
        if name not in phases or name == "last_step_succeeded":
            phases[name] = round(at, 3)
    return phases


def run_record(gql: DagsterTestClient, run_id: str) -> dict[str, Any]:
    data: dict[str, Any] = gql.query(RUN_TIMES, {"id": run_id})["runOrError"]
    return data


def finished(gql: DagsterTestClient, run_id: str) -> dict[str, Any] | None:
    """The run's record once it has finished, else None."""
    record = run_record(gql, run_id)
    return record if record.get("status") in FINISHED else None


def time_one(
    gql: DagsterTestClient, job: str, phases: list[dict[str, float]]
) -> tuple[float, float]:
    """Launch `job` once and wait for it: seconds from the request to the run's end and to
    its start, both as the instance recorded them (and its `run_phases` onto `phases`)."""
    requested = time.time()
    run_id = gql.launch(LOCATION, job)
    # Polled gently: the webserver shares the 2 cores with the run being timed, and the
    # latency comes from the instance's own end time, not from this loop.
    record: dict[str, Any] = wait_for(
        partial(finished, gql, run_id), 300, f"run {run_id} of {job} to finish", interval=0.2
    )
    if record["status"] != "SUCCESS":
        raise RuntimeError(f"run {run_id} of {job} ended {record['status']}")
    phases.append(run_phases(gql, run_id, requested))
    return float(record["endTime"]) - requested, float(record["startTime"]) - requested


# mode -> job -> (launch to success, launch to start, run_phases) of each timed run
Times = dict[str, dict[str, tuple[list[float], list[float], list[dict[str, float]]]]]


def time_all(clients: dict[str, DagsterTestClient], runs: int, warmup: int, times: Times) -> None:
    """For each job, warmup + runs rounds; each round runs it once in every mode, one run
    at a time, the first mode rotating from round to round. Interleaved, every mode meets
    the same background load (other work on a shared machine comes and goes). The timed
    runs go into `times` as they end, so an interrupted bench still reports them."""
    modes = list(clients)
    for m in modes:
        times[m] = {name: ([], [], []) for name in JOBS}
    for name, job in JOBS.items():
        for i in range(warmup + runs):
            shift = i % len(modes)
            took = []
            for mode in modes[shift:] + modes[:shift]:
                phases: list[dict[str, float]] = []
                to_success, to_start = time_one(clients[mode], job, phases)
                took.append(f"{mode} {to_success:.2f}s")
                if i >= warmup:
                    times[mode][name][0].append(to_success)
                    times[mode][name][1].append(to_start)
                    times[mode][name][2].extend(phases)
                time.sleep(0.5)
            what = "warm-up" if i < warmup else f"run {i - warmup + 1}/{runs}"
            print(f"bench: {job} {what}: {', '.join(took)}", file=sys.stderr)


def summarize(times: Times) -> dict[str, Any]:
    return {
        mode: {
            name: {
                "launch_to_success_seconds": latency_summary(success),
                "launch_to_start_seconds": latency_summary(start),
                "phases_p50_seconds": {
                    phase: round(median([p[phase] for p in phases if phase in p]), 3)
                    for phase in PHASES.values()
                    if any(phase in p for p in phases)
                },
            }
            for name, (success, start, phases) in jobs.items()
            if success
        }
        for mode, jobs in times.items()
    }


def write_run_fleet(fleet_dir: Path, repo: CodeRepo, warm_forks: bool) -> None:
    entry = {"git_url": repo.url, "module_name": "demo.definitions", "poll_interval": 3600}
    write_fleet(
        fleet_dir,
        {"demo": entry},
        environments=[{"name": "A", "branch": "A"}],
        instance={"warm_forks": warm_forks},
    )


@dataclass(frozen=True)
class Served:
    """One mode's webserver, and the location's Python and checkout as dagfleet made them."""

    gql: DagsterTestClient
    python: str
    checkout: Path


def location_python(fleet: RunningFleet) -> str:
    """The Python of the location's environment, from its code server's command line (one
    forked from a warm parent has that parent's, the same Python)."""
    python = psutil.Process(fleet.pid(LOCATION)).cmdline()[0]
    if not Path(python).is_file():
        raise RuntimeError(f"the code server of {LOCATION} runs {python!r}, not a file")
    return python


@contextlib.contextmanager
def dagfleet_served(base: Path, repo: CodeRepo, mode: str) -> Iterator[Served]:
    """`dagfleet up --no-daemon` in `mode` (its own fleet directory), loaded, then stopped."""
    fleet_dir = base / f"fleet-{mode}"
    write_run_fleet(fleet_dir, repo, warm_forks=mode == "warm")
    fleet = RunningFleet(fleet_dir, extra=["--no-daemon"])
    with running(fleet):
        fleet.wait_loaded({LOCATION}, timeout=900)
        python = location_python(fleet)  # its status is written: the publish is over
        checkout = (fleet.state / "checkouts" / LOCATION / "current").resolve()
        time.sleep(2)
        yield Served(fleet.gql, python, checkout)


def built_env(base: Path, repo: CodeRepo) -> tuple[str, Path]:
    """The location's Python and checkout when no dagfleet mode runs: one cold start."""
    with dagfleet_served(base, repo, "cold") as served:
        return served.python, served.checkout


def stock_home(home: Path, port: int) -> Path:
    """A DAGSTER_HOME like dagfleet's (SQLite, telemetry off) with Dagster's own default
    run coordinator and launcher, and a workspace naming one gRPC server."""
    home.mkdir(parents=True)
    config = {
        "telemetry": {"enabled": False},
        "storage": {"sqlite": {"base_dir": str(home / "storage")}},
        "run_coordinator": {
            "module": "dagster._core.run_coordinator",
            "class": "DefaultRunCoordinator",
        },
        "run_launcher": {"module": "dagster._core.launcher", "class": "DefaultRunLauncher"},
        "local_artifact_storage": {
            "module": "dagster._core.storage.root",
            "class": "LocalArtifactStorage",
            "config": {"base_dir": str(home)},
        },
    }
    (home / "dagster.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    workspace = home / "workspace.yaml"
    entry = {"host": "127.0.0.1", "port": port, "location_name": LOCATION}
    workspace.write_text(yaml.safe_dump({"load_from": [{"grpc_server": entry}]}))
    return workspace


@contextlib.contextmanager
def started(args: list[str], env: dict[str, str], cwd: Path, log: Path) -> Any:
    """A child in its own process group, stopped with its whole tree however we leave."""
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            args, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        yield proc
    finally:
        family = tree_processes([proc.pid])
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        for p in family:
            with contextlib.suppress(psutil.Error):
                if p.is_running():
                    p.kill()


def stock_loaded(gql: DagsterTestClient) -> bool:
    try:
        return LOCATION in gql.loaded_locations()
    except Exception:  # not answering yet
        return False


@contextlib.contextmanager
def stock_served(base: Path, python: str, checkout: Path) -> Iterator[Served]:
    """Stock Dagster on the same checkout and Python: `dagster api grpc` and
    `dagster-webserver`, loaded, then stopped with their process trees."""
    grpc_port, web_port = free_port(), free_port()
    home = base / "stock_home"
    workspace = stock_home(home, grpc_port)
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    server = [python, "-m", "dagster", "api", "grpc", "--port", str(grpc_port)]
    server += ["--module-name", "demo.definitions", "--working-directory", str(checkout)]
    server += ["--location-name", LOCATION]
    web = [sys.executable, "-m", "dagster_webserver", "-h", "127.0.0.1", "-p", str(web_port)]
    web += ["-w", str(workspace)]
    with (
        started(server, env, checkout, base / STOCK_LOGS[0]) as grpc_proc,
        started(web, env, home, base / STOCK_LOGS[1]) as web_proc,
    ):
        gql = DagsterTestClient(f"http://127.0.0.1:{web_port}")
        try:
            deadline = time.monotonic() + 300
            while not stock_loaded(gql):
                if grpc_proc.poll() is not None or web_proc.poll() is not None:
                    logs = [(base / n).read_text()[-1500:] for n in STOCK_LOGS]
                    raise RuntimeError("stock Dagster exited:\n" + "\n".join(logs))
                if time.monotonic() > deadline:
                    raise TimeoutError(f"stock webserver: {LOCATION} not loaded after 300 s")
                time.sleep(0.2)
            time.sleep(2)
            yield Served(gql, python, checkout)
        finally:
            gql.close()


def measure(
    base: Path,
    repo: CodeRepo,
    modes: list[str],
    runs: int,
    warmup: int,
    sequential: bool,
    times: Times,
) -> None:
    """Bring up every mode (or one at a time with `sequential`) and time its runs."""
    own = [m for m in modes if m != "stock"]
    if sequential:
        env: tuple[str, Path] | None = None
        for mode in modes:
            if mode == "stock":
                python, checkout = env or built_env(base, repo)
                with stock_served(base, python, checkout) as served:
                    time_all({mode: served.gql}, runs, warmup, times)
            else:
                with dagfleet_served(base, repo, mode) as served:
                    env = (served.python, served.checkout)
                    time_all({mode: served.gql}, runs, warmup, times)
            print(f"bench: {mode}: {json.dumps(summarize(times)[mode])}", file=sys.stderr)
        return
    with contextlib.ExitStack() as stack:
        up = {m: stack.enter_context(dagfleet_served(base, repo, m)) for m in own}
        if "stock" in modes:
            first = next(iter(up.values()), None)
            python, checkout = (first.python, first.checkout) if first else built_env(base, repo)
            up["stock"] = stack.enter_context(stock_served(base, python, checkout))
        time_all({m: up[m].gql for m in modes}, runs, warmup, times)


def report(results: dict[str, Any], runs: int, warmup: int, started_at: float) -> dict[str, Any]:
    import dagster

    out: dict[str, Any] = {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "dagster": dagster.__version__,
        "runs": runs,
        "warmup": warmup,
        "modes": results,
        "targets": TARGETS,
    }

    def p50(mode: str, job: str) -> float | None:
        fig = results.get(mode, {}).get(job)
        return fig["launch_to_success_seconds"]["p50"] if fig else None

    def meets(mode: str, job: str) -> bool:
        got = p50(mode, job)
        return got is not None and got <= TARGETS[f"{job}_p50_seconds"]

    out["meets_targets"] = {
        mode: {job: meets(mode, job) for job in JOBS} for mode in results if mode != "stock"
    }
    if "stock" in results:
        out["ratios_over_stock"] = {
            mode: {f"{job}_p50": ratio(p50(mode, job), p50("stock", job)) for job in JOBS}
            for mode in results
            if mode != "stock"
        }
    out["total_seconds"] = round(time.monotonic() - started_at, 1)
    return out


def _terminate(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")  # unwinds through every fleet's finally


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=10, help="timed runs per job and mode")
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs first (default 1)")
    parser.add_argument(
        "--modes", default=",".join(MODES), help="comma-separated: warm, cold, stock (default all)"
    )
    parser.add_argument(
        "--sequential",
        action="store_true",
        help="one mode up at a time, all its runs, then the next (default: all up, interleaved)",
    )
    args = parser.parse_args()
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = [m for m in modes if m not in MODES]
    if unknown or not modes:
        parser.error(
            f"--modes: unknown {', '.join(unknown) or '(none)'}; choose {', '.join(MODES)}"
        )
    if args.runs < 1 or args.warmup < 0:
        parser.error("--runs must be at least 1 and --warmup at least 0")
    signal.signal(signal.SIGTERM, _terminate)
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:  # started with `&`: children inherit
        signal.signal(signal.SIGINT, signal.default_int_handler)
    load_before = os.getloadavg()
    started_at = time.monotonic()
    times: Times = {}
    error: str | None = None
    try:
        with tempfile.TemporaryDirectory(prefix="dagfleet-runs-") as tmp:
            base = Path(tmp)
            repo = CodeRepo(base / "remotes")
            repo.commit({"demo/definitions.py": RUN_DEFS}, "a 3-step job, two executors")
            repo.push("A")
            measure(base, repo, modes, args.runs, args.warmup, args.sequential, times)
    except (Exception, KeyboardInterrupt) as exc:
        error = f"{type(exc).__name__}: {exc}"
    out = report(summarize(times), args.runs, args.warmup, started_at)
    out["loadavg_1m_before_after"] = [round(load_before[0], 2), round(os.getloadavg()[0], 2)]
    if error is not None:
        out["error"] = error  # the runs timed before it are still reported
    print(json.dumps(out, indent=2))
    if error is not None:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
