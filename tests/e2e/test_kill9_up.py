"""Scenario: `dagfleet up` is killed with -9. Its children (webserver, daemon, code
servers, warm spares) and their descendants go with it within seconds, instead of
running on under PID 1 with the UI still answering; `dagfleet status` says the fleet
is stopped, not Ready; and the next `up` starts cleanly."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

from dagfleet.layout import Layout
from dagfleet.status.liveness import fleet_running
from tests.e2e.conftest import demo_fleet
from tests.support.fleetproc import DAGFLEET, dagfleet_processes, wait_for
from tests.support.gitrepo import CodeRepo


def _answers(url: str) -> bool:
    try:
        httpx.get(url, timeout=1.0)
    except httpx.HTTPError:
        return False
    return True


def _webserver_port(procs: list[psutil.Process]) -> int:
    for proc in procs:
        args = proc.cmdline()
        if "dagster_webserver" in args:
            return int(args[args.index("-p") + 1])
    raise AssertionError(f"no webserver among {[p.cmdline()[:4] for p in procs]}")


def _status(fleet_dir: Path, api_port: int) -> list[dict[str, Any]]:
    api = f"http://127.0.0.1:{api_port}"
    out = subprocess.run(
        [DAGFLEET, "status", "--fleet", str(fleet_dir), "-o", "json", "--api", api],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode in (0, 1), out.stderr
    return list(json.loads(out.stdout))


def _ready(status: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in status["conditions"] if c["type"] == "Ready")


def test_kill9_of_up_takes_its_children_along(
    tmp_path: Path, code_repo: CodeRepo, start_fleet
) -> None:
    fleet_dir = demo_fleet(tmp_path, code_repo)
    layout = Layout.for_fleet(fleet_dir)
    fleet = start_fleet(fleet_dir)
    fleet.wait_loaded({"demo-A", "demo-B"})
    fleet.pid("demo-A")
    before = dagfleet_processes(fleet.state)
    upstream = f"http://127.0.0.1:{_webserver_port(before)}/server_info"
    ui = f"http://127.0.0.1:{fleet.web_port}/server_info"
    assert _answers(upstream) and _answers(ui)
    # Today's status: Ready, with its code servers alive.
    assert all(_ready(s)["status"] == "True" for s in _status(fleet_dir, fleet.api_port))
    # Descendants: the code servers' own children count too (none must survive).
    pids = {p.pid for p in before}
    for proc in before:
        pids |= {c.pid for c in proc.children(recursive=True)}

    fleet.kill9()
    killed_at = time.monotonic()
    wait_for(
        lambda: (
            not any(psutil.pid_exists(pid) and _alive(pid) for pid in pids)
            and not dagfleet_processes(fleet.state)
        ),
        10,
        "every process of the fleet gone",
    )
    gone_after = time.monotonic() - killed_at
    assert gone_after < 10
    assert not _answers(upstream), "the Dagster webserver still answers after kill -9 of up"
    assert not _answers(ui)
    wait_for(lambda: not fleet_running(layout), 10, "the fleet lock freed")

    shown = _status(fleet_dir, fleet.api_port)
    assert {s["location"] for s in shown} >= {"demo-A", "demo-B"}
    for status in shown:
        ready = _ready(status)
        assert ready["status"] == "False" and ready["reason"] == "FleetStopped", status

    # The reaper did its job and left: a new `up` starts and serves again.
    again = start_fleet(fleet_dir)
    again.wait_loaded({"demo-A", "demo-B"})


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False
