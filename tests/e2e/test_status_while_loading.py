"""Scenario: a developer pushes a commit whose definitions take 15 s to import. While
it loads, the location's status (its file and `dagfleet status -o json`) says a newer
commit is loading (Synced=False, reason Progressing, "loading definitions of <sha>", and
the full commit in `progressing_commit`) while `commit` and the UI stay on the old one;
once loaded, Published with the new commit. A slow commit that then fails to import
leaves the old one serving and Synced says why."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

from tests.e2e.conftest import demo_fleet, with_asset
from tests.support.fleetproc import DAGFLEET, RunningFleet, wait_for
from tests.support.gitrepo import CodeRepo

SLOW = "import time\ntime.sleep(15)\n"


def _cli_status(fleet: RunningFleet, location: str) -> dict[str, Any]:
    assert fleet.fleet_dir is not None
    api = f"http://127.0.0.1:{fleet.api_port}"
    out = subprocess.run(
        [DAGFLEET, "status", "--fleet", str(fleet.fleet_dir), "-o", "json", "--api", api],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode in (0, 1), out.stderr
    return next(s for s in json.loads(out.stdout) if s["location"] == location)


def _synced(status: dict[str, Any]) -> dict[str, Any]:
    return next((c for c in status.get("conditions", []) if c["type"] == "Synced"), {})


def _loading(status: dict[str, Any], sha: str) -> bool:
    synced = _synced(status)
    loads = synced.get("message", "") == f"loading definitions of {sha[:12]}"
    return synced.get("reason") == "Progressing" and loads


def test_status_says_a_slow_commit_is_loading_while_the_old_one_serves(
    tmp_path: Path, code_repo: CodeRepo, start_fleet
) -> None:
    fleet = start_fleet(demo_fleet(tmp_path, code_repo), extra=["--no-daemon"])
    fleet.wait_loaded({"demo-A", "demo-B"})
    old = fleet.commit("demo-A")
    assert old == code_repo.tip("A")

    slow = code_repo.commit({"demo/definitions.py": SLOW + with_asset("four")}, "slow four")
    code_repo.push("A")
    loading = wait_for(
        lambda: _loading(fleet.status("demo-A"), slow) and fleet.status("demo-A"),
        30,
        "the slow commit loading",
    )
    started = time.monotonic()
    assert loading["commit"] == old
    assert loading.get("progressing_commit") == slow
    shown = _cli_status(fleet, "demo-A")
    assert _loading(shown, slow) and shown["commit"] == old, shown
    assert shown.get("progressing_commit") == slow
    ready = next(c for c in shown["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True", ready  # the old commit still serves
    keys = fleet.gql.asset_keys("demo-A")
    assert "one" in keys and "four" not in keys  # the UI still shows the old commit
    # Every check above saw the old commit serving, so the load was still going on.
    print(f"checks done {time.monotonic() - started:.1f} s into the load")

    fleet.wait_serving("demo-A", slow, timeout=90)
    done = fleet.status("demo-A")
    assert _synced(done)["reason"] == "Published" and slow in _synced(done)["message"]
    assert done.get("progressing_commit") is None
    assert "four" in fleet.gql.asset_keys("demo-A")

    broken = code_repo.commit(
        {"demo/definitions.py": SLOW + "raise RuntimeError('no defs today')\n"}, "slow and broken"
    )
    code_repo.push("A")
    wait_for(lambda: _loading(fleet.status("demo-A"), broken), 30, "the broken commit loading")
    failed = fleet.wait_synced_reason("demo-A", "DefinitionsInvalid", timeout=90)
    assert "no defs today" in failed["message"] and broken[:12] in failed["message"]
    after = fleet.status("demo-A")
    assert after["commit"] == slow and after.get("progressing_commit") is None
    assert "four" in fleet.gql.asset_keys("demo-A")  # the last good commit still serves
