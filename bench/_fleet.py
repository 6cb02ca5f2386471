"""Shared set-up for the benchmarks: real repos, a real `dagfleet up`, USS sampling."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import statistics
import sys
from pathlib import Path

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
    "dagfleet_processes",
    "free_port",
    "percentile",
    "push_hook",
    "wait_for",
    "write_fleet",
]


WEBHOOK_SECRET = "bench-secret"  # what the benchmarks' fleets get as DAGFLEET_WEBHOOK_SECRET


def push_hook(fleet: RunningFleet, repo: CodeRepo, branch: str = "A") -> None:
    """Tell the fleet about a push of `branch`, as GitHub's signed push webhook would."""
    body = json.dumps(
        {"ref": f"refs/heads/{branch}", "repository": {"clone_url": repo.url}}
    ).encode()
    sig = hmac.new(WEBHOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()
    httpx.post(
        f"{fleet.api}/hooks/git",
        content=body,
        headers={
            "X-GitHub-Event": "push",
            "X-Hub-Signature-256": f"sha256={sig}",
            "Content-Type": "application/json",
        },
    ).raise_for_status()


def percentile(values: list[float], p: float) -> float:
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
