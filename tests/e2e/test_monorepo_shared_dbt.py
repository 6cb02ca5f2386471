"""Scenario: a data team keeps two Dagster projects and one dbt project in one
repository: a `dg` workspace made by the real `create-dagster workspace` with two
projects (`ingest`, `reporting`) made by `create-dagster project`, and a dbt project
made by `dbt init` at the root that both load with dagster-dbt, each its own models.

`dagfleet repo add mono --git-url URL` finds both projects and writes them into the
repo file as `locations`; the team adds the dbt build step and DBT_PROJECT_DIR (one
manifest for the repo, shared) in GitOps fashion, then starts the fleet. Both
locations load as `mono-ingest-A` and `mono-reporting-A`, each shows its own dbt
models, and a run in each materializes them.
"""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path

import pytest
import yaml

from tests.support.dbt import dbt_init
from tests.support.fleetproc import DAGFLEET, write_fleet
from tests.support.gitrepo import git
from tests.support.shapes import CREATE_DAGSTER, run_tool, uv_binary

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def definitions(select: str) -> str:
    return textwrap.dedent(
        f"""
        import os

        from dagster import AssetSelection, Definitions, define_asset_job, in_process_executor
        from dagster_dbt import DbtCliResource, DbtProject, dbt_assets

        project = DbtProject(
            project_dir=os.environ["DBT_PROJECT_DIR"],
            profiles_dir=os.environ["DBT_PROJECT_DIR"],
        )


        @dbt_assets(manifest=project.manifest_path, select="{select}")
        def models(context, dbt: DbtCliResource):
            yield from dbt.cli(["run"], context=context).stream()


        defs = Definitions(
            assets=[models],
            jobs=[define_asset_job("dbt_job", selection=AssetSelection.all())],
            resources={{"dbt": DbtCliResource(project_dir=project)}},
            executor=in_process_executor,
        )
        """
    )


def monorepo(root: Path) -> Path:
    """The bare remote of a dg workspace with two projects and a shared dbt project."""
    work, remote = root / "mono-work", root / "mono.git"
    root.mkdir(parents=True)
    uvx = str(Path(uv_binary()).with_name("uvx"))
    create = [uvx, "--from", CREATE_DAGSTER, "create-dagster"]
    run_tool([*create, "workspace", str(work), "--no-uv-sync"], cwd=root)
    for name, select in (("ingest", "my_first_dbt_model"), ("reporting", "my_second_dbt_model")):
        run_tool([*create, "project", f"projects/{name}", "--no-uv-sync"], cwd=work)
        pyproject = work / "projects" / name / "pyproject.toml"
        text = pyproject.read_text()
        pin = next(line for line in text.splitlines() if line.strip().startswith('"dagster=='))
        # create-dagster pins its own release; the index may not have the matching
        # dagster-dbt yet (an unpinned one then resolves to an ancient 0.11), so the
        # team does what its own `uv add` would make it do: a range, and a floor.
        pyproject.write_text(
            text.replace(
                pin,
                '    "dagster>=1.13,<1.14",\n    "dagster-dbt>=0.29",\n    "dbt-duckdb",\n'
                '    "dbt-core<1.12",',
            )
        )
        (work / "projects" / name / "src" / name / "definitions.py").write_text(definitions(select))
    dbt_init(work)
    git("init", "--quiet", "--initial-branch", "A", cwd=work)
    git("add", "-A", cwd=work)
    git("commit", "--quiet", "-m", "workspace, two projects, one dbt project", cwd=work)
    subprocess.run(["git", "clone", "--bare", "--quiet", str(work), str(remote)], check=True)
    return remote


def test_two_locations_share_one_dbt_project(tmp_path: Path, start_fleet) -> None:
    remote = monorepo(tmp_path / "remotes")
    fleet_dir = write_fleet(tmp_path / "fleet", {}, environments=[{"name": "A", "branch": "A"}])
    added = subprocess.run(
        [
            DAGFLEET,
            "repo",
            "add",
            "mono",
            "--git-url",
            remote.as_uri(),
            "--fleet",
            str(fleet_dir),
            "--no-wait",
            "--api",
            "http://127.0.0.1:9",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert added.returncode == 0, added.stdout + added.stderr
    repo_file = fleet_dir / "repos" / "mono.yaml"
    doc = yaml.safe_load(repo_file.read_text())
    assert doc["locations"] == [
        {"name": "ingest", "working_directory": "projects/ingest"},
        {"name": "reporting", "working_directory": "projects/reporting"},
    ]
    assert "mono-ingest-A" in added.stdout and "mono-reporting-A" in added.stdout

    # The team's edit: one build step for the repo's dbt project, shared by both.
    doc["build"] = [
        {
            "run": 'dbt parse --project-dir "$DAGFLEET_CHECKOUT/jaffle" '
            '--profiles-dir "$DAGFLEET_CHECKOUT/jaffle"',
            "timeout": 300,
        }
    ]
    doc["environment"] = [
        {"name": "DBT_PROJECT_DIR", "value": "${DAGFLEET_CHECKOUT}/jaffle"},
        {"name": "WAREHOUSE", "value": "${DAGFLEET_STORAGE_ROOT}/warehouse.duckdb"},
    ]
    doc["poll_interval"] = 1
    repo_file.write_text(yaml.safe_dump(doc, sort_keys=False))

    fleet = start_fleet(fleet_dir, extra=["--no-daemon"])
    fleet.wait_loaded({"mono-ingest-A", "mono-reporting-A"}, timeout=900)
    assert "my_first_dbt_model" in fleet.gql.asset_keys("mono-ingest-A")
    assert "my_second_dbt_model" in fleet.gql.asset_keys("mono-reporting-A")
    for location in ("mono-ingest-A", "mono-reporting-A"):
        assert fleet.status(location)["repo"] == "mono"
        run_id = fleet.gql.launch(location, "dbt_job")
        assert fleet.gql.wait_run(run_id, timeout=300) == "SUCCESS", location
    # Storage is per repository: both locations wrote one warehouse under mono's prefix.
    found = list(fleet.state.rglob("warehouse.duckdb"))
    assert [p.relative_to(fleet.state).parts[:4] for p in found] == [
        ("data", "A", "repos", "mono")
    ], found
