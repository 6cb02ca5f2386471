"""Shared set-up for the benchmarks: real repos, a real `dagfleet up`, USS sampling.

Also what several benches measure the same way: a fleet's whole process tree
(memory and CPU), waiting for a pushed asset to be live, and the percentile
and growth-curve arithmetic of the JSON they print.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import math
import statistics
import sys
import time
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.support.fleetproc import (  # noqa: E402
    RunningFleet,
    dagfleet_processes,
    free_port,
    wait_for,
    write_fleet,
)
from tests.support.gitrepo import CodeRepo  # noqa: E402

__all__ = [
    "WEBHOOK_SECRET",
    "CodeRepo",
    "RunningFleet",
    "code_server_uss_mib",
    "cpu_seconds",
    "dagfleet_processes",
    "fleet_tree",
    "free_port",
    "growth_per_unit",
    "latency_summary",
    "live_asset_keys",
    "median",
    "memory_totals",
    "percentile",
    "push_hook",
    "ratio",
    "running",
    "tree_processes",
    "wait_asset_live",
    "wait_for",
    "write_fleet",
]


WEBHOOK_SECRET = "bench-secret"  # what the benchmarks' fleets get as DAGFLEET_WEBHOOK_SECRET


def push_hook(fleet: RunningFleet, repo: CodeRepo, branch: str = "A") -> None:
    """Tell the fleet about a push of `branch`, as GitHub's signed push webhook would: the
    new tip in `after` and a delivery id of its own. (Without them every push of a
    branch is the same body, which the fleet answers as a replay, syncing nothing.)"""
    body = json.dumps(
        {
            "ref": f"refs/heads/{branch}",
            "after": repo.tip(branch),
            "repository": {"clone_url": repo.url},
        }
    ).encode()
    sig = hmac.new(WEBHOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()
    httpx.post(
        f"{fleet.api}/hooks/git",
        content=body,
        headers={
            "X-GitHub-Event": "push",
            "X-GitHub-Delivery": str(uuid.uuid4()),
            "X-Hub-Signature-256": f"sha256={sig}",
            "Content-Type": "application/json",
        },
    ).raise_for_status()


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile (0..100) with linear interpolation between ranks; nan if empty."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def code_server_uss_mib(state: Path) -> dict[str, float]:
    """Private memory (USS) of each live code server, children included, in MiB.

    Code servers are found through their status files: a server started from a
    warm spare keeps the spare's command line, so the PID is the reliable key.
    """
    out: dict[str, float] = {}
    for path in sorted((state / "status").glob("*.json")):
        status = json.loads(path.read_text())
        if not status.get("pid"):
            continue
        try:
            proc = psutil.Process(status["pid"])
            total = proc.memory_full_info().uss
            for child in proc.children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    total += child.memory_full_info().uss
        except psutil.Error:
            continue
        out[status["location"]] = round(total / 2**20, 1)
    return out


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def latency_summary(values: list[float], digits: int = 2) -> dict[str, float | int | None]:
    """n, p50, p95, min and max of latencies in seconds, rounded (None when there are none)."""
    if not values:
        return {"n": 0, "p50": None, "p95": None, "min": None, "max": None}
    return {
        "n": len(values),
        "p50": round(median(values), digits),
        "p95": round(percentile(values, 95), digits),
        "min": round(min(values), digits),
        "max": round(max(values), digits),
    }


def ratio(numerator: float | None, denominator: float | None, digits: int = 2) -> float | None:
    """numerator / denominator rounded; None when either is missing, nan or the divisor is 0."""
    if numerator is None or denominator is None:
        return None
    if math.isnan(numerator) or math.isnan(denominator) or denominator == 0:
        return None
    return round(numerator / denominator, digits)


def growth_per_unit(points: dict[int, float], digits: int = 1) -> dict[int, float]:
    """The slope of a growth curve from its smallest size: for each larger size N,
    (value(N) - value(smallest)) / (N - smallest). Empty with fewer than two sizes.

    Used for "memory per location after the first of an environment": what one
    more location costs once the shared parts (webserver, daemon, warm parents)
    are paid for, which total / locations hides.
    """
    if len(points) < 2:
        return {}
    smallest = min(points)
    base = points[smallest]
    return {
        n: round((value - base) / (n - smallest), digits)
        for n, value in sorted(points.items())
        if n != smallest
    }


# --- a fleet's processes -------------------------------------------------------------


def _key(proc: psutil.Process) -> tuple[int, float] | None:
    """A process's identity across samples (pids are reused): pid and start time."""
    try:
        return (proc.pid, proc.create_time())
    except psutil.Error:
        return None


def tree_processes(root_pids: Iterable[int]) -> list[psutil.Process]:
    """The live processes under each root, the roots included, grandchildren and deeper
    too (a code server forked by a warm parent is that parent's child, not `up`'s).
    Each process once; a root that is gone is skipped."""
    found: dict[tuple[int, float], psutil.Process] = {}
    for pid in root_pids:
        try:
            root = psutil.Process(pid)
            family = [root, *root.children(recursive=True)]
        except psutil.Error:
            continue
        for proc in family:
            key = _key(proc)
            if key is not None:
                found.setdefault(key, proc)
    return list(found.values())


def fleet_tree(up_pid: int | None, state: Path) -> list[psutil.Process]:
    """Every process of one fleet: the tree of `dagfleet up`, plus any process that carries
    the fleet's DAGFLEET_STATE without being in that tree (double-forked, or reparented
    after its parent died) and that process's own tree."""
    roots = [up_pid] if up_pid is not None else []
    roots += [p.pid for p in dagfleet_processes(state)]
    return tree_processes(roots)


def memory_totals(procs: Iterable[psutil.Process]) -> dict[str, float | int]:
    """Summed USS, PSS and RSS of `procs` in MiB, and how many were measured.

    USS counts only pages private to each process (copy-on-write pages still shared
    with a warm parent are not counted); PSS shares each shared page among the
    processes that map it, so the sum is the fair total of what they occupy.
    """
    uss = pss = rss = 0
    counted = 0
    for proc in procs:
        try:
            info = proc.memory_full_info()
        except psutil.Error:  # exited since it was listed
            continue
        uss += info.uss
        pss += getattr(info, "pss", 0)
        rss += info.rss
        counted += 1
    mib = 2**20
    return {
        "uss_mib": round(uss / mib, 1),
        "pss_mib": round(pss / mib, 1),
        "rss_mib": round(rss / mib, 1),
        "processes": counted,
    }


def cpu_seconds(procs: Iterable[psutil.Process]) -> float:
    """CPU seconds (user + system) spent by `procs`, plus by their children already waited
    for: a child that exits between two samples moves its time into its parent's
    children_* fields, so the difference of two sums over a tree stays right."""
    total = 0.0
    for proc in procs:
        try:
            t = proc.cpu_times()
        except psutil.Error:
            continue
        total += t.user + t.system + t.children_user + t.children_system
    return total


def idle_cpu_cores(up_pid: int | None, state: Path, seconds: float) -> float:
    """Mean cores the fleet's tree uses over `seconds` of wall time, sampled at both ends
    (processes that start in between count from zero, as they should)."""
    total, _ = idle_cpu_by_process(up_pid, state, seconds)
    return total


def idle_cpu_by_process(
    up_pid: int | None, state: Path, seconds: float
) -> tuple[float, dict[psutil.Process, float]]:
    """`idle_cpu_cores`, and the cores each process of the tree used over the window
    (a child that exited meanwhile is counted in its parent: its time moved there)."""
    t0 = time.monotonic()
    before = {_key(p): (p, cpu_seconds([p])) for p in fleet_tree(up_pid, state)}
    time.sleep(seconds)
    after = {_key(p): (p, cpu_seconds([p])) for p in fleet_tree(up_pid, state)}
    wall = time.monotonic() - t0
    each: dict[psutil.Process, float] = {}
    for key, (proc, cpu) in after.items():
        if key is None:
            continue
        start = before.get(key, (proc, 0.0))[1]
        each[proc] = (cpu - start) / wall
    # The total as `cpu_seconds` counts it: a process gone by the second sample whose
    # parent waited for it moved its time (all of it) into that parent's children_*.
    total = sum(cpu for _, cpu in after.values()) - sum(cpu for _, cpu in before.values())
    return total / wall, each


@contextlib.contextmanager
def running(fleet: RunningFleet) -> Iterator[RunningFleet]:
    """Start `fleet` and always stop it: SIGTERM through RunningFleet.stop, then SIGKILL
    to anything of its tree that outlived it (also when the bench failed or was
    interrupted)."""
    fleet.start()
    assert fleet.proc is not None
    seen: list[psutil.Process] = []
    try:
        yield fleet
    finally:
        with contextlib.suppress(Exception):
            seen = fleet_tree(fleet.proc.pid, fleet.state)
        try:
            fleet.stop()
        except Exception as exc:  # children that did not exit: killed below
            print(f"bench: stopping the fleet: {exc}", file=sys.stderr)
        fleet.force_cleanup()
        for proc in seen:
            with contextlib.suppress(psutil.Error):
                if proc.is_running():
                    proc.kill()


# --- is a pushed asset live? -------------------------------------------------------

LOCATION_ASSETS = """
query($name: String!) {
  workspaceLocationEntryOrError(name: $name) {
    __typename
    ... on WorkspaceLocationEntry {
      locationOrLoadError {
        __typename
        ... on RepositoryLocation { repositories { assetNodes { assetKey { path } } } }
      }
    }
  }
}"""


def live_asset_keys(fleet: RunningFleet, location: str) -> set[str]:
    """The asset keys (`a/b` paths) the webserver serves for one location. Asks for that
    location only: with 50 locations the whole workspace costs the webserver a lot
    more per poll, which would slow the very publish being timed."""
    data: dict[str, Any] = fleet.gql.query(LOCATION_ASSETS, {"name": location})
    entry = data.get("workspaceLocationEntryOrError") or {}
    loc = entry.get("locationOrLoadError") or {}
    keys = set()
    for repo in loc.get("repositories") or []:
        for node in repo.get("assetNodes", []):
            keys.add("/".join(node["assetKey"]["path"]))
    return keys


def wait_asset_live(
    fleet: RunningFleet, location: str, asset: str, timeout: float = 120, interval: float = 0.05
) -> float:
    """Poll until the webserver shows `asset` in `location`; the monotonic time it did."""
    deadline = time.monotonic() + timeout
    while asset not in live_asset_keys(fleet, location):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{asset} not visible in {location} after {timeout:.0f} s")
        time.sleep(interval)
    return time.monotonic()
