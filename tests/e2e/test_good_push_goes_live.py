"""Scenario: a developer pushes a new asset to branch A; A serves it, B does not,
and queries and run launches against the location keep succeeding throughout
the publish (runs in flight on the old server finish before it stops)."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from tests.e2e.conftest import demo_fleet, with_asset
from tests.support.fleetproc import wait_for
from tests.support.gitrepo import CodeRepo


def test_good_push_goes_live_without_downtime(
    tmp_path: Path, code_repo: CodeRepo, start_fleet
) -> None:
    fleet = start_fleet(demo_fleet(tmp_path, code_repo), extra=["--no-daemon"])
    fleet.wait_loaded({"demo-A", "demo-B"})
    first = code_repo.tip("A")
    assert fleet.commit("demo-A") == first

    failures: list[str] = []
    checks = 0
    stop = threading.Event()

    def probe() -> None:
        nonlocal checks
        while not stop.is_set():
            try:
                keys = fleet.gql.asset_keys("demo-A")
                if "one" not in keys:
                    failures.append(f"location answered without its assets: {keys}")
            except Exception as exc:
                failures.append(repr(exc))
            checks += 1

    run_ids: list[str] = []

    launching = threading.Event()

    def launch() -> None:
        while not stop.is_set():
            try:
                run_ids.append(fleet.gql.launch("demo-A", "trivial_job"))
            except Exception as exc:
                failures.append(f"launch failed: {exc!r}")
            launching.set()
            stop.wait(0.2)

    prober = threading.Thread(target=probe)
    launcher = threading.Thread(target=launch)
    prober.start()
    launcher.start()
    launching.wait(60)
    try:
        new = code_repo.commit({"demo/definitions.py": with_asset("four")}, "add four")
        code_repo.push("A")
        wait_for(lambda: "four" in fleet.gql.asset_keys("demo-A"), 60, "asset four in demo-A")
    finally:
        stop.set()
        prober.join()
        launcher.join()

    assert failures == [], failures[:3]
    assert checks > 5
    assert run_ids
    # Runs launched while the old server was being replaced finish, too.
    assert [fleet.gql.wait_run(r) for r in run_ids] == ["SUCCESS"] * len(run_ids)
    assert "four" not in fleet.gql.asset_keys("demo-B")
    fleet.wait_serving("demo-A", new)
    status = fleet.status("demo-A")
    assert status["commit"] == new
    assert status["last_good_commit"] == new
    assert os.readlink(fleet.state / "checkouts" / "demo-A" / "current") == new
    assert fleet.commit("demo-B") == first
    # A run of the new code succeeds through the webserver.
    run_id = fleet.gql.launch("demo-A", "trivial_job")
    assert fleet.gql.wait_run(run_id) == "SUCCESS"
