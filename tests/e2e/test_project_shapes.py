"""Scenario: many teams register real Dagster repositories, each in its own common shape
(uv.lock, setuptools, setup.py, setup.cfg, requirements.txt, poetry-core, pdm-backend,
a `dg` project, code_location_target_module, unpinned `dagster`, the real
`create-dagster` output), with `dagfleet repo add NAME --git-url URL` and nothing else.
dagfleet discovers each code target, builds its environment, loads it, and a run of
its job through the central webserver materializes its assets.

One running fleet (environment A only) serves every shape, as it would serve many
teams; each shape is its own test, so one shape's failure names that shape.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg2
import pytest

from tests.support.fleetproc import DAGFLEET, RunningFleet, write_fleet
from tests.support.shapes import CREATE_DAGSTER, SHAPES, ShapeRepo

# tests/e2e/conftest.py sets pytestmark too, but pytest reads it only from test modules.
pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ADD_TIMEOUT = 480

MATERIALIZATIONS = """
query($path: [String!]!) {
  assetOrError(assetKey: {path: $path}) {
    __typename
    ... on Asset { assetMaterializations(limit: 1) { runId } }
  }
}"""


@pytest.fixture(scope="module")
def shapes_fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningFleet]:
    """A fleet with no repos and one environment, A; always stopped."""
    base = tmp_path_factory.mktemp("shapes")
    fleet_dir = write_fleet(base / "fleet", {}, environments=[{"name": "A", "branch": "A"}])
    fleet = RunningFleet(fleet_dir, extra=["--no-daemon"]).start()
    try:
        fleet.wait_loaded(set(), timeout=120)
        yield fleet
    finally:
        try:
            repos = len(list((fleet_dir / "repos").glob("*.yaml")))
            print(f"the fleet with {repos} repos stopped in {fleet.stop():.1f}s")
        finally:
            fleet.force_cleanup()


def repo_add(fleet: RunningFleet, name: str, url: str) -> subprocess.CompletedProcess[str]:
    """Exactly what a user types, pointed at this fleet's API and directory."""
    return subprocess.run(
        [
            DAGFLEET,
            "repo",
            "add",
            name,
            "--git-url",
            url,
            "--timeout",
            str(ADD_TIMEOUT),
            "--fleet",
            str(fleet.fleet_dir),
            "--api",
            fleet.api.removesuffix("/api/v1"),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=ADD_TIMEOUT + 60,
    )


def diagnosis(fleet: RunningFleet, location: str, added: subprocess.CompletedProcess[str]) -> str:
    synced = fleet.condition(location, "Synced")
    return (
        f"repo add exit {added.returncode}\nstdout: {added.stdout}\nstderr: {added.stderr}\n"
        f"Synced: {synced.get('reason')}: {synced.get('message')}"
    )


def last_materialization(fleet: RunningFleet, asset: str) -> str | None:
    data: dict[str, Any] = fleet.gql.query(MATERIALIZATIONS, {"path": [asset]})["assetOrError"]
    found = data.get("assetMaterializations") or []
    return str(found[0]["runId"]) if found else None


@pytest.mark.parametrize("shape", list(SHAPES))
def test_shape_loads_and_runs(
    shape: str, shapes_fleet: RunningFleet, tmp_path: Path, record_property: Any
) -> None:
    check_shape(shapes_fleet, ShapeRepo(tmp_path / "remotes", shape), record_property)


@pytest.mark.parametrize(
    ("shape", "configured_by"),
    # Each shape once, each way of choosing PostgreSQL once: four combinations cost a
    # minute more of the suite and test nothing these two do not.
    [("unpinned_dagster", "env_vars"), ("create_dagster", "fleet_yaml")],
)
def test_shape_on_postgres(
    shape: str,
    configured_by: str,
    database: str,
    tmp_path: Path,
    start_fleet: Callable[..., RunningFleet],
    record_property: Any,
) -> None:
    """On a PostgreSQL instance the run worker, in the repo's env, needs dagster-postgres
    matching the repo's dagster (1.13.29 unpinned, 1.13.28 from create-dagster), whether
    or not a release with the computed 0.(minor+16).patch number exists. The README
    selects PostgreSQL with `instance.postgres` or with seed 003's DAGSTER_POSTGRES_*."""
    spec: dict[str, Any] = {}
    env: dict[str, str] = {}
    if configured_by == "fleet_yaml":
        spec["instance"] = {"postgres": {"host": "127.0.0.1", "user": "postgres", "db": database}}
    else:
        env = {
            "DAGSTER_POSTGRES_USER": "postgres",
            "DAGSTER_POSTGRES_HOST": "127.0.0.1",
            "DAGSTER_POSTGRES_PORT": "5432",
            "DAGSTER_POSTGRES_DB": database,
        }
    environments = [{"name": "A", "branch": "A"}]
    fleet_dir = write_fleet(tmp_path / "fleet", {}, environments=environments, **spec)
    fleet = start_fleet(fleet_dir, extra=["--no-daemon"], env=env)
    fleet.wait_loaded(set(), timeout=120)
    repo = ShapeRepo(tmp_path / "remotes", shape)
    run_id = check_shape(fleet, repo, record_property)
    conn = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname=database)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT status FROM runs WHERE run_id = %s", (run_id,))
            assert cur.fetchone() == ("SUCCESS",)
    finally:
        conn.close()


def check_shape(fleet: RunningFleet, repo: ShapeRepo, record_property: Any) -> str:
    """Register `repo` with the CLI, wait for NAME-A, run its job; the run's id."""
    location = repo.location

    started = time.monotonic()
    added = repo_add(fleet, repo.name, repo.url)
    loaded_after = time.monotonic() - started
    record_property("add_to_loaded_s", round(loaded_after, 1))
    assert added.returncode == 0, diagnosis(fleet, location, added)
    assert (fleet.fleet_dir / "repos" / f"{repo.name}.yaml").exists()

    # Ready, at the pushed commit, and the UI shows the shape's assets and job.
    assert fleet.condition(location, "Ready").get("status") == "True", fleet.status(location)
    fleet.wait_serving(location, repo.tip("A"))
    assert set(repo.shape.assets) <= fleet.gql.asset_keys(location)
    # The code server runs the repo's own 1.13.x (the central instance may differ).
    version = fleet.status(location).get("dagster_version") or ""
    record_property("dagster_version", version)
    assert version.startswith("1.13."), fleet.status(location)
    if repo.shape.name == "create_dagster":
        assert version == CREATE_DAGSTER.split("==")[1], "create-dagster pins its own dagster"

    run_id = fleet.gql.launch(location, repo.shape.job)
    assert fleet.gql.wait_run(run_id) == "SUCCESS", fleet.status(location)
    for asset in repo.shape.assets:
        assert last_materialization(fleet, asset) == run_id, asset
    return run_id
