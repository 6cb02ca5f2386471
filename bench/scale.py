"""Scale: what one machine pays per location (issue 17). N tiny repositories with the same
dependencies (so one shared uv environment), each three assets, a job and a stopped
schedule, in environments A and B: 2N locations (an odd size puts the last repo in A only).

For each size (locations) the fleet is built once from empty state (`dagfleet up` until
every location is loaded, not timed), then for each mode (`warm`: fleet.yaml
`instance.warm_forks: true`; `cold`: false, a fresh interpreter per code server and run,
today's path) `dagfleet up` starts again from that warm state and we measure:
- all_loaded_seconds: from starting `dagfleet up` until the webserver's GraphQL shows
  every location loaded;
- memory: total USS, PSS and RSS of every process of the fleet (the whole tree of
  `dagfleet up`, grandchildren included, plus anything carrying its DAGFLEET_STATE),
  per location (total / locations) and by role, sampled after the idle window;
- idle_cpu_cores: CPU seconds of that tree over --idle seconds (default 30), starting
  5 s after all loaded, divided by the wall time;
- push_to_live_seconds: over --pushes pushes (default 10), commit a new asset to repo
  r00's branch A and push, then time from running `dagfleet repo sync r00 --env A` until
  the webserver shows the asset in r00-A (sync_returned_seconds: until the command
  returned; --sync api uses the API's POST /repos/r00/sync?env=A&wait=true instead).
  r00 polls once an hour so that only the sync publishes; the other repos poll at the
  default period, part of the idle cost. pushed_publish: the p50 seconds of each
  publish step of those syncs, from the location's publish history.

Per mode, two answers to "what does one location cost": growth, the memory of each
location after the first of an environment, (total(N) - total(smallest)) / (N - smallest)
across sizes (the issue's figure); and over_empty_fleet, (total(N) - empty) / N, where
empty is a fleet with no repos (up, webserver, daemon) measured first in the same mode
(--no-empty skips it). Targets (issue 17, 2 cores):
at 50 locations loaded in <= 40 s, total USS <= 3 GiB, <= 50 MiB USS per added
location, idle CPU <= 0.1 cores, push-to-live p50 <= 1.0 s. Ratios are warm / cold,
measured in the same run. Prints one JSON object.

    uv run --frozen python bench/scale.py [--sizes 10,25,50] [--modes warm,cold] [--pushes 10]
    uv run --frozen python bench/scale.py --sizes 10,25,50,100   # 100 if memory allows
    uv run --frozen python bench/scale.py --sizes 4 --pushes 3 --idle 10   # a quick look
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
from _fleet import (
    CodeRepo,
    RunningFleet,
    fleet_tree,
    growth_per_unit,
    idle_cpu_by_process,
    latency_summary,
    live_asset_keys,
    median,
    memory_totals,
    ratio,
    running,
    write_fleet,
)

from dagfleet.frontdoor.tokens import read_local_token
from tests.support.fleetproc import DAGFLEET, wait_for

MODES = {"warm": True, "cold": False}  # mode -> fleet.yaml instance.warm_forks
PUSHED_REPO = "r00"
PUSHED_LOCATION = f"{PUSHED_REPO}-A"
SETTLE_SECONDS = 5.0  # after all loaded: the daemon starts, statuses are written
LOAD_TIMEOUT = 1800.0
TARGETS = {
    "at_locations": 50,
    "all_loaded_seconds": 40.0,
    "total_uss_mib": 3072.0,
    "uss_mib_per_added_location": 50.0,
    "idle_cpu_cores": 0.1,
    "push_to_live_p50_seconds": 1.0,
}


def definitions(repo: str, extra: str | None = None) -> str:
    """A tiny repo's definitions: three assets, a job, a stopped daily schedule, and
    `extra` as one more asset downstream of the last (what a push adds)."""
    assets = [f"{repo}_raw", f"{repo}_clean", f"{repo}_report"]
    extra_asset = ""
    if extra is not None:
        extra_asset = f"\n\n@asset\ndef {extra}({repo}_report: int) -> int:\n    return 1\n"
        assets.append(extra)
    return f'''from dagster import Definitions, ScheduleDefinition, asset, define_asset_job


@asset
def {repo}_raw() -> int:
    return 1


@asset
def {repo}_clean({repo}_raw: int) -> int:
    return {repo}_raw + 1


@asset
def {repo}_report({repo}_clean: int) -> int:
    return {repo}_clean * 2
{extra_asset}

{repo}_job = define_asset_job("{repo}_job", selection=[{", ".join(repr(a) for a in assets[:3])}])
{repo}_daily = ScheduleDefinition(job={repo}_job, cron_schedule="0 3 * * *")
defs = Definitions(assets=[{", ".join(assets)}], jobs=[{repo}_job], schedules=[{repo}_daily])
'''


def repo_names(locations: int) -> list[str]:
    """ceil(locations / 2) repos: r00, r01, ..."""
    return [f"r{i:02d}" for i in range((locations + 1) // 2)]


def make_repos(base: Path, locations: int) -> dict[str, CodeRepo]:
    repos = {}
    for name in repo_names(locations):
        repo = CodeRepo(base / "remotes", name=name)
        for branch in ("A", "B"):
            repo.commit({"demo/definitions.py": definitions(name)}, "tiny repo", branch=branch)
            repo.push(branch)
        repos[name] = repo
    return repos


def write_scale_fleet(
    fleet_dir: Path, repos: dict[str, CodeRepo], locations: int, warm_forks: bool
) -> set[str]:
    """(Re)write the fleet files for `locations` locations; the location names."""
    entries: dict[str, dict[str, Any]] = {}
    names: set[str] = set()
    last = repo_names(locations)[-1]
    for name, repo in repos.items():
        entry: dict[str, Any] = {"git_url": repo.url, "module_name": "demo.definitions"}
        if name == PUSHED_REPO:
            entry["poll_interval"] = 3600
        envs = ["A"] if (locations % 2 and name == last) else ["A", "B"]
        if envs == ["A"]:
            entry["environments"] = envs
        entries[name] = entry
        names |= {f"{name}-{env}" for env in envs}
    write_fleet(fleet_dir, entries, instance={"warm_forks": warm_forks})
    return names


def role(proc: psutil.Process, up_pid: int, servers: set[int]) -> str:
    """What a fleet process is, for the memory breakdown. Code servers are known by the
    PIDs in their status files: one forked from a warm parent keeps that parent's
    command line."""
    if proc.pid == up_pid:
        return "up"
    if proc.pid in servers:
        return "code_servers"
    try:
        cmd = " ".join(proc.cmdline())
        name = proc.name()  # forked processes keep the zygote's command line, not its name
    except psutil.Error:
        return "other"
    named = {
        "dagfleet-server": "code_servers",
        "dagfleet-warm": "warm_parents",
        "dagfleet-runs": "forkservers",  # a server's forkserver, and the runs it forks
    }
    if name in named:
        return named[name]
    if "dagster_webserver" in cmd or "dagster-webserver" in cmd:
        return "webserver"
    if "dagster-daemon" in cmd:
        return "daemon"
    if "api grpc" in cmd:
        return "code_servers"
    if "runtime.warm" in cmd:  # dagfleet_runtime.warm: warm parents and forkservers
        return "warm_parents"
    if "dagster._grpc.server" in cmd:  # a warm spare still waiting for its command
        return "spares"
    if "dagfleet.runtime.reaper" in cmd:
        return "reaper"
    return "other"


def memory_sample(fleet: RunningFleet, locations: int) -> dict[str, Any]:
    assert fleet.proc is not None
    up_pid = fleet.proc.pid
    procs = fleet_tree(up_pid, fleet.state)
    servers = server_pids(fleet)
    by_role: dict[str, list[psutil.Process]] = {}
    for proc in procs:
        by_role.setdefault(role(proc, up_pid, servers), []).append(proc)
    total = memory_totals(procs)
    return {
        **total,
        "uss_mib_per_location": round(float(total["uss_mib"]) / locations, 1),
        "pss_mib_per_location": round(float(total["pss_mib"]) / locations, 1),
        "by_role": {
            name: {k: memory_totals(ps)[k] for k in ("uss_mib", "pss_mib", "processes")}
            for name, ps in sorted(by_role.items())
        },
    }


def idle_cpu_roles(fleet: RunningFleet, seconds: float) -> tuple[float, dict[str, float]]:
    """Idle cores of the whole tree, and by role (git and other short-lived children count
    in the process that waited for them: `up` for the sync loops' git)."""
    assert fleet.proc is not None
    up_pid = fleet.proc.pid
    servers = server_pids(fleet)
    total, each = idle_cpu_by_process(up_pid, fleet.state, seconds)
    by_role: dict[str, float] = {}
    for proc, cores in each.items():
        name = role(proc, up_pid, servers)
        by_role[name] = by_role.get(name, 0.0) + cores
    return total, {name: round(v, 4) for name, v in sorted(by_role.items())}


def server_pids(fleet: RunningFleet) -> set[int]:
    """The live code servers' PIDs, from the locations' status files."""
    return {int(fleet.status(loc).get("pid") or 0) for loc in fleet_locations(fleet)}


def fleet_locations(fleet: RunningFleet) -> list[str]:
    return sorted(p.stem for p in (fleet.state / "status").glob("*.json"))


class Sync:
    """One `sync r00 --env A` under way: through the CLI (a subprocess) or the API (a
    POST with wait=true on a thread). `done()` is None while it runs, then "" when it
    succeeded or what went wrong."""

    def __init__(self, fleet: RunningFleet, method: str) -> None:
        assert fleet.fleet_dir is not None
        self.log = fleet.fleet_dir.parent / "sync-cli.log"
        self.result: str | None = None
        self.cli: subprocess.Popen[bytes] | None = None
        if method == "cli":
            args = [DAGFLEET, "repo", "sync", PUSHED_REPO, "--env", "A"]
            args += ["--fleet", str(fleet.fleet_dir)]
            args += ["--api", fleet.api.removesuffix("/api/v1"), "-o", "json"]
            with open(self.log, "wb") as out:
                self.cli = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
        else:
            token = read_local_token(fleet.state)
            thread = threading.Thread(target=self._post, args=(fleet.api, token), daemon=True)
            thread.start()

    def _post(self, api: str, token: str | None) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        try:
            resp = httpx.post(
                f"{api}/repos/{PUSHED_REPO}/sync",
                params={"env": "A", "wait": "true"},
                headers=headers,
                timeout=300,
            )
            self.result = "" if resp.status_code < 300 else f"{resp.status_code}: {resp.text}"
        except Exception as exc:
            self.result = f"{type(exc).__name__}: {exc}"

    def done(self) -> str | None:
        if self.cli is None:
            return self.result
        code = self.cli.poll()
        if code is None:
            return None
        tail = self.log.read_text(errors="replace")[-2000:]
        return "" if code == 0 else f"dagfleet repo sync exited {code}: {tail}"

    def stop(self) -> None:
        if self.cli is not None and self.cli.poll() is None:
            self.cli.kill()
            self.cli.wait(10)


def sync_and_wait(fleet: RunningFleet, asset: str, method: str) -> tuple[float, float]:
    """Sync r00's environment A (`dagfleet repo sync r00 --env A`, or the API's sync),
    polling the webserver meanwhile: seconds until the asset is live, and until the sync
    returned."""
    start = time.monotonic()
    sync = Sync(fleet, method)
    live: float | None = None
    returned: float | None = None
    deadline = start + 300
    try:
        while live is None or returned is None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{asset} not live in {PUSHED_LOCATION} 300 s after the sync")
            if returned is None and (outcome := sync.done()) is not None:
                returned = time.monotonic()
                if outcome:
                    raise RuntimeError(f"the sync failed: {outcome}")
            if live is None and asset in live_asset_keys(fleet, PUSHED_LOCATION):
                live = time.monotonic()
            time.sleep(0.05)
    finally:
        sync.stop()
    return live - start, returned - start


def publish_steps(fleet: RunningFleet, subject_prefix: str) -> dict[str, Any]:
    """Where the pushed syncs spent their time, from the location's publish history
    (`dagfleet history r00-A -o json`): p50 seconds of each step over the published
    attempts whose commit subject starts with `subject_prefix`."""
    assert fleet.fleet_dir is not None
    args = [DAGFLEET, "history", PUSHED_LOCATION, "--fleet", str(fleet.fleet_dir), "-o", "json"]
    args += ["--api", fleet.api.removesuffix("/api/v1"), "--limit", "200"]
    done = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0:
        return {"error": f"dagfleet history exited {done.returncode}: {done.stderr[-500:]}"}
    steps: dict[str, list[float]] = {}
    total: list[float] = []
    for attempt in json.loads(done.stdout):
        if attempt.get("outcome") != "published":
            continue
        if not (attempt.get("subject") or "").startswith(subject_prefix):
            continue
        total.append(float(attempt["seconds"]))
        for step in attempt.get("steps", []):
            steps.setdefault(step["step"], []).append(float(step["seconds"]))
    return {
        "attempts": len(total),
        "seconds_p50": round(median(total), 2) if total else None,
        "steps_p50": {name: round(median(v), 3) for name, v in steps.items()},
    }


def measure(
    fleet_dir: Path,
    repo: CodeRepo,
    locations: set[str],
    mode: str,
    pushes: int,
    idle: float,
    sync: str,
) -> dict[str, Any]:
    """One warm-state start of the fleet in `mode`, and the figures above."""
    fleet = RunningFleet(fleet_dir)
    t0 = time.monotonic()
    with running(fleet):
        fleet.wait_loaded(locations, timeout=LOAD_TIMEOUT)
        loaded = time.monotonic() - t0
        time.sleep(SETTLE_SECONDS)
        assert fleet.proc is not None
        cpu, cpu_roles = idle_cpu_roles(fleet, idle)
        memory = memory_sample(fleet, len(locations))
        live: list[float] = []
        cli: list[float] = []
        for i in range(pushes):
            name = f"pushed_{mode}_{i}"
            repo.commit({"demo/definitions.py": definitions(PUSHED_REPO, name)}, name)
            repo.push("A")
            to_live, to_return = sync_and_wait(fleet, name, sync)
            live.append(to_live)
            cli.append(to_return)
            time.sleep(0.5)
        steps = publish_steps(fleet, f"pushed_{mode}_") if pushes else {}
    return {
        "locations": len(locations),
        "all_loaded_seconds": round(loaded, 2),
        "all_loaded_seconds_per_location": round(loaded / len(locations), 2),
        "memory": memory,
        "idle_cpu_cores": round(cpu, 3),
        "idle_cpu_cores_by_role": cpu_roles,
        "idle_seconds": idle,
        "push_to_live_seconds": latency_summary(live),
        "sync_method": sync,
        "sync_returned_seconds": latency_summary(cli),
        "pushed_publish": steps,
    }


def build_state(fleet_dir: Path, locations: set[str]) -> float:
    """Start once from empty state until everything is loaded (mirrors, checkouts, the
    shared env); seconds taken, for information."""
    fleet = RunningFleet(fleet_dir)
    t0 = time.monotonic()
    with running(fleet):
        fleet.wait_loaded(locations, timeout=LOAD_TIMEOUT)
        wait_for(lambda: all(fleet.status(loc).get("pid") for loc in locations), 60, "statuses")
        return round(time.monotonic() - t0, 2)


def measure_empty(base: Path, mode: str, idle: float) -> dict[str, Any]:
    """A fleet with no repos in `mode` (up, webserver, daemon): memory and idle CPU, the
    part of every total that does not grow with locations."""
    fleet_dir = write_fleet(base / f"empty-{mode}", {}, instance={"warm_forks": MODES[mode]})
    fleet = RunningFleet(fleet_dir)
    with running(fleet):

        def up() -> bool:
            assert fleet.proc is not None and fleet.proc.poll() is None, fleet.log()[-2000:]
            return fleet.gql.locations() is not None

        wait_for(up, 300, "the webserver of the empty fleet")
        time.sleep(SETTLE_SECONDS)
        assert fleet.proc is not None
        cpu, cpu_roles = idle_cpu_roles(fleet, idle)
        memory = memory_sample(fleet, 1)
    for key in ("uss_mib_per_location", "pss_mib_per_location"):
        del memory[key]
    return {
        "memory": memory,
        "idle_cpu_cores": round(cpu, 3),
        "idle_cpu_cores_by_role": cpu_roles,
    }


def over_empty(fig: dict[str, Any], empty: dict[str, Any]) -> dict[str, float]:
    """Per location, what the fleet costs beyond the empty fleet of the same mode."""
    n = fig["locations"]
    return {
        "uss_mib_per_location": round(
            (fig["memory"]["uss_mib"] - empty["memory"]["uss_mib"]) / n, 1
        ),
        "pss_mib_per_location": round(
            (fig["memory"]["pss_mib"] - empty["memory"]["pss_mib"]) / n, 1
        ),
        "idle_cpu_cores_per_location": round(
            (fig["idle_cpu_cores"] - empty["idle_cpu_cores"]) / n, 4
        ),
    }


def run_size(
    base: Path, size: int, modes: list[str], args: argparse.Namespace, out: dict[str, Any]
) -> None:
    """Measure one size in every mode, filling `out` as it goes (kept if a mode fails)."""
    repos = make_repos(base, size)
    fleet_dir = base / "fleet"
    locations = write_scale_fleet(fleet_dir, repos, size, warm_forks=MODES[modes[0]])
    out["build_seconds"] = build_state(fleet_dir, locations)
    for mode in modes:
        write_scale_fleet(fleet_dir, repos, size, warm_forks=MODES[mode])
        out[mode] = measure(
            fleet_dir, repos[PUSHED_REPO], locations, mode, args.pushes, args.idle, args.sync
        )
        print(f"bench: {size} locations, {mode}: {json.dumps(out[mode])}", file=sys.stderr)


def growth(results: dict[int, dict[str, Any]], mode: str) -> dict[str, Any]:
    points = {n: r[mode]["memory"] for n, r in results.items() if mode in r}
    return {
        "uss_mib_per_added_location": growth_per_unit(
            {n: float(m["uss_mib"]) for n, m in points.items()}
        ),
        "pss_mib_per_added_location": growth_per_unit(
            {n: float(m["pss_mib"]) for n, m in points.items()}
        ),
        "all_loaded_seconds_per_added_location": growth_per_unit(
            {n: float(r[mode]["all_loaded_seconds"]) for n, r in results.items() if mode in r},
            digits=2,
        ),
    }


def ratios(fig: dict[str, Any]) -> dict[str, float | None]:
    warm, cold = fig["warm"], fig["cold"]
    return {
        "all_loaded_seconds": ratio(warm["all_loaded_seconds"], cold["all_loaded_seconds"]),
        "uss_mib": ratio(warm["memory"]["uss_mib"], cold["memory"]["uss_mib"]),
        "pss_mib": ratio(warm["memory"]["pss_mib"], cold["memory"]["pss_mib"]),
        "idle_cpu_cores": ratio(warm["idle_cpu_cores"], cold["idle_cpu_cores"]),
        "push_to_live_p50": ratio(
            warm["push_to_live_seconds"]["p50"], cold["push_to_live_seconds"]["p50"]
        ),
    }


def report(
    results: dict[int, dict[str, Any]],
    empty: dict[str, Any],
    modes: list[str],
    started: float,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "cpus": os.cpu_count(),
        "memory_total_mib": round(psutil.virtual_memory().total / 2**20),
        "python": platform.python_version(),
        "sizes": sorted(results),
        "modes": {},
        "targets": TARGETS,
    }
    for mode in modes:
        sizes = {n: r[mode] for n, r in sorted(results.items()) if mode in r}
        out["modes"][mode] = {
            "warm_forks": MODES[mode],
            "empty_fleet": empty.get(mode),
            "sizes": sizes,
            "growth": growth(results, mode),
        }
        if mode in empty:
            out["modes"][mode]["over_empty_fleet"] = {
                n: over_empty(fig, empty[mode]) for n, fig in sizes.items()
            }
    out["build_seconds"] = {n: r.get("build_seconds") for n, r in sorted(results.items())}
    if "warm" in modes and "cold" in modes:
        out["ratios_warm_over_cold"] = {
            n: ratios(r) for n, r in sorted(results.items()) if "warm" in r and "cold" in r
        }
    out["total_seconds"] = round(time.monotonic() - started, 1)
    return out


def _terminate(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")  # unwinds through every fleet's finally


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--sizes",
        default="10,25,50",
        help="locations per fleet, comma-separated (default 10,25,50)",
    )
    parser.add_argument(
        "--modes", default="warm,cold", help="comma-separated: warm, cold (default both)"
    )
    parser.add_argument("--pushes", type=int, default=10, help="pushes per size and mode")
    parser.add_argument(
        "--idle", type=float, default=30.0, help="seconds of the idle CPU window (default 30)"
    )
    parser.add_argument(
        "--sync",
        choices=("cli", "api"),
        default="cli",
        help="how each push is synced: `dagfleet repo sync` (default, the issue's figure) or "
        "the API's POST /repos/r00/sync (no CLI start-up)",
    )
    parser.add_argument(
        "--no-empty",
        action="store_true",
        help="skip the fleet with no repos (the base the per-location costs are taken over)",
    )
    args = parser.parse_args()
    try:
        sizes = sorted({int(s) for s in args.sizes.split(",") if s.strip()})
    except ValueError:
        parser.error(f"--sizes: {args.sizes!r} is not a list of integers, e.g. 10,25,50")
    if not sizes or min(sizes) < 1:
        parser.error("--sizes: give at least one size of 1 location or more")
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = [m for m in modes if m not in MODES]
    if unknown or not modes:
        parser.error(f"--modes: unknown {', '.join(unknown) or '(none)'}; choose warm, cold")
    signal.signal(signal.SIGTERM, _terminate)
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:  # started with `&`: children inherit
        signal.signal(signal.SIGINT, signal.default_int_handler)
    load_before = os.getloadavg()
    started = time.monotonic()
    results: dict[int, dict[str, Any]] = {}
    empty: dict[str, Any] = {}
    error: str | None = None
    try:
        if not args.no_empty:
            with tempfile.TemporaryDirectory(prefix="dagfleet-scale-empty-") as tmp:
                for mode in modes:
                    empty[mode] = measure_empty(Path(tmp), mode, args.idle)
                    print(f"bench: empty fleet, {mode}: {json.dumps(empty[mode])}", file=sys.stderr)
        for size in sizes:
            with tempfile.TemporaryDirectory(prefix=f"dagfleet-scale-{size}-") as tmp:
                results[size] = {}
                run_size(Path(tmp), size, modes, args, results[size])
    except (Exception, KeyboardInterrupt) as exc:
        error = f"{type(exc).__name__}: {exc}"
    out = report(results, empty, modes, started)
    out["loadavg_1m_before_after"] = [round(load_before[0], 2), round(os.getloadavg()[0], 2)]
    if error is not None:
        out["error"] = error  # the sizes measured before it are still reported
    print(json.dumps(out, indent=2))
    if error is not None:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
