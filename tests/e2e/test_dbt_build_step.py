"""Scenario: a team's repository holds a dbt project (made by the real `dbt init`) and
Dagster code that loads it with dagster-dbt. The manifest is not committed (dbt's own
.gitignore drops target/); a build step (`dbt parse`) makes it after the env is
installed and before the load check. The repo file points DBT_PROJECT_DIR into the
commit's tree and the DuckDB file into the location's storage with `${...}`
references, and tightens the resolution with a uv constraint (the newest dbt-core
pulls a parser wheel from outside the package index). The dbt models appear as
assets and a run materializes them; B on the same commit reuses A's build; a commit
whose dbt project does not parse is BuildFailed and never published."""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path

import pytest

from tests.support.dbt import dbt_init
from tests.support.fleetproc import write_fleet
from tests.support.gitrepo import git

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

DEFINITIONS = textwrap.dedent(
    """
    import os

    from dagster import (
        AssetExecutionContext,
        AssetSelection,
        Definitions,
        define_asset_job,
        in_process_executor,
    )
    from dagster_dbt import DbtCliResource, DbtProject, dbt_assets

    project = DbtProject(
        project_dir=os.environ["DBT_PROJECT_DIR"], profiles_dir=os.environ["DBT_PROJECT_DIR"]
    )


    @dbt_assets(manifest=project.manifest_path)
    def jaffle_models(context: AssetExecutionContext, dbt: DbtCliResource):
        yield from dbt.cli(["run"], context=context).stream()


    defs = Definitions(
        assets=[jaffle_models],
        jobs=[define_asset_job("dbt_job", selection=AssetSelection.all())],
        resources={"dbt": DbtCliResource(project_dir=project)},
        executor=in_process_executor,
    )
    """
)

PYPROJECT = textwrap.dedent(
    """
    [project]
    name = "analytics"
    version = "0.1.0"
    requires-python = ">=3.10"
    dependencies = ["dagster", "dagster-dbt", "dbt-duckdb"]

    [tool.dagster]
    module_name = "analytics.definitions"
    """
)


def dbt_repo(root: Path) -> tuple[Path, Path]:
    """A working clone and bare remote with a real `dbt init` project; branches A, B."""
    work, remote = root / "analytics-work", root / "analytics.git"
    work.mkdir(parents=True)
    dbt_init(work)
    (work / "analytics").mkdir()
    (work / "analytics" / "__init__.py").write_text("")
    (work / "analytics" / "definitions.py").write_text(DEFINITIONS)
    (work / "pyproject.toml").write_text(PYPROJECT)
    git("init", "--quiet", "--initial-branch", "A", cwd=work)
    git("add", "-A", cwd=work)
    git("commit", "--quiet", "-m", "dbt init", cwd=work)
    git("branch", "B", cwd=work)
    subprocess.run(["git", "clone", "--bare", "--quiet", str(work), str(remote)], check=True)
    git("remote", "add", "origin", str(remote), cwd=work)
    return work, remote


REPO_FILE = {
    "poll_interval": 1,
    "build": [{"run": "dbt parse --project-dir jaffle --profiles-dir jaffle", "timeout": 300}],
    "uv": {"constraints": ["dbt-core<1.12"]},
    "environment": [
        {"name": "DBT_PROJECT_DIR", "value": "${DAGFLEET_PROJECT_DIR}/jaffle"},
        {"name": "WAREHOUSE", "value": "${DAGFLEET_STORAGE_ROOT}/warehouse.duckdb"},
    ],
}


def build_runs(log: Path) -> int:
    return log.read_text().count("--- dagfleet: starting build step: dbt parse")


def test_dbt_models_are_built_loaded_and_run(tmp_path: Path, start_fleet) -> None:
    work, remote = dbt_repo(tmp_path / "remotes")
    fleet_dir = write_fleet(
        tmp_path / "fleet", {"analytics": {"git_url": remote.as_uri(), **REPO_FILE}}
    )
    fleet = start_fleet(fleet_dir, extra=["--no-daemon"])
    fleet.wait_loaded({"analytics-A", "analytics-B"}, timeout=600)

    keys = fleet.gql.asset_keys("analytics-A")
    assert {"my_first_dbt_model", "my_second_dbt_model"} <= keys, keys
    # The manifest came from the build step, in the tree the location serves.
    tip = git("rev-parse", "A", cwd=work)
    tree = fleet.state / "checkouts" / "analytics-A" / tip
    assert (tree / "jaffle" / "target" / "manifest.json").is_file()
    # One build for the commit, shared by both environments.
    logs = fleet.state / "logs"
    assert build_runs(logs / "analytics-A.log") + build_runs(logs / "analytics-B.log") == 1

    run_id = fleet.gql.launch("analytics-A", "dbt_job")
    assert fleet.gql.wait_run(run_id, timeout=300) == "SUCCESS"
    found = list(fleet.state.rglob("warehouse.duckdb"))
    assert [p.relative_to(fleet.state).parts[:2] for p in found] == [("data", "A")], found

    # A dbt project that does not parse: BuildFailed, the last good commit keeps serving.
    (work / "jaffle" / "models" / "example" / "broken.sql").write_text(
        "select * from {{ ref('no_such_model') }}\n"
    )
    git("add", "-A", cwd=work)
    git("commit", "--quiet", "-m", "broken model", cwd=work)
    bad = git("rev-parse", "HEAD", cwd=work)
    git("push", "--quiet", "origin", "A:A", cwd=work)
    cond = fleet.wait_synced_reason("analytics-A", "BuildFailed")
    assert bad[:12] in cond["message"]
    assert "no_such_model" in cond["message"]
    assert fleet.commit("analytics-A") == tip
    assert fleet.condition("analytics-A", "Ready")["status"] == "True"
    assert not (
        fleet.state
        / "checkouts"
        / "analytics-A"
        / "current"
        / "jaffle"
        / "models"
        / "example"
        / "broken.sql"
    ).exists()
