"""Scenario: a team whose repository still pins an older Dagster. The lowest
supported minor (1.10) loads and runs against the central 1.13 instance, with the
repo's own version, not dagfleet's; a repo pinned below the range is refused with
DagsterVersionUnsupported naming its version and the instance's, and the last good
commit keeps serving. (The high end, an unpinned `dagster`, is a shape in
test_project_shapes.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from dagfleet.venvs import dagster_range
from tests.e2e.conftest import demo_fleet
from tests.support.gitrepo import CodeRepo

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

LOWEST = f"{dagster_range.MINIMUM[0]}.{dagster_range.MINIMUM[1]}"


def test_lowest_supported_dagster_runs_and_older_is_refused(
    tmp_path: Path, code_repo: CodeRepo, start_fleet
) -> None:
    sha = code_repo.commit({"requirements.txt": f"dagster=={LOWEST}.*\n"}, "old dagster")
    code_repo.push("A")
    fleet = start_fleet(demo_fleet(tmp_path, code_repo, environments=["A"]), extra=["--no-daemon"])
    fleet.wait_loaded({"demo-A"}, timeout=480)
    fleet.wait_serving("demo-A", sha)
    assert fleet.status("demo-A")["dagster_version"].startswith(f"{LOWEST}.")
    run_id = fleet.gql.launch("demo-A", "trivial_job")
    assert fleet.gql.wait_run(run_id) == "SUCCESS"

    older = code_repo.commit({"requirements.txt": "dagster==1.9.13\n"}, "older still")
    code_repo.push("A")
    cond = fleet.wait_synced_reason("demo-A", "DagsterVersionUnsupported")
    assert older[:12] in cond["message"]
    assert "1.9.13" in cond["message"]
    assert dagster_range.central_version() in cond["message"]
    assert fleet.commit("demo-A") == sha
