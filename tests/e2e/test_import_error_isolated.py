"""Scenario: one repo raises at import and another names no code target; their
locations show the error, the others serve."""

from __future__ import annotations

from pathlib import Path

from tests.support.fleetproc import wait_for, write_fleet
from tests.support.gitrepo import CodeRepo


def test_broken_repo_does_not_affect_others(tmp_path: Path, start_fleet) -> None:
    good = CodeRepo(tmp_path / "good")
    bad = CodeRepo(tmp_path / "bad")
    bad.commit({"demo/definitions.py": "raise RuntimeError('boom at import')\n"}, "boom")
    bad.push("A")
    # Names no target, and has no [tool.dagster] or workspace.yaml to discover one from.
    untargeted = CodeRepo(tmp_path / "untargeted")
    fleet_dir = write_fleet(
        tmp_path / "fleet",
        {
            "good": {"git_url": good.url, "module_name": "demo.definitions"},
            "bad": {"git_url": bad.url, "module_name": "demo.definitions", "environments": ["A"]},
            "untargeted": {"git_url": untargeted.url, "environments": ["A"]},
        },
    )
    fleet = start_fleet(fleet_dir, extra=["--no-daemon"])
    fleet.wait_loaded({"good-A", "good-B"})
    synced = wait_for(
        lambda: (
            (c := fleet.condition("bad-A", "Synced")).get("reason") == "DefinitionsInvalid" and c
        ),
        120,
        "bad-A DefinitionsInvalid",
    )
    assert "boom at import" in synced["message"]
    assert fleet.condition("bad-A", "Ready")["status"] == "False"

    def ui_shows_error() -> bool:
        return "boom at import" in (fleet.gql.load_error("bad-A") or "")

    wait_for(ui_shows_error, 60, "the load error in the Dagster UI")
    no_target = wait_for(
        lambda: (
            (c := fleet.condition("untargeted-A", "Synced")).get("reason") == "CodeTargetNotFound"
            and c
        ),
        60,
        "untargeted-A CodeTargetNotFound",
    )
    assert "set module_name, python_file or package_name" in no_target["message"]
    assert fleet.condition("untargeted-A", "Ready")["status"] == "False"
    run_id = fleet.gql.launch("good-A", "trivial_job")
    assert fleet.gql.wait_run(run_id) == "SUCCESS"
