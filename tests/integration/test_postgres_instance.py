"""The central instance on the real PostgreSQL at 127.0.0.1:5432 completes a run.

Each test gets its own database (the `database` fixture in tests/conftest.py), so runs of the suite
never see each other's rows.
"""

from __future__ import annotations

from pathlib import Path

import psycopg2
import pytest
import yaml

from tests.support.fleetproc import write_fleet
from tests.support.gitrepo import CodeRepo

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_run_lands_in_postgres(tmp_path: Path, database: str, start_fleet) -> None:
    repo = CodeRepo(tmp_path / "remotes")
    fleet_dir = write_fleet(
        tmp_path / "fleet",
        {"demo": {"git_url": repo.url, "module_name": "demo.definitions"}},
        environments=[{"name": "A", "branch": "A"}],
    )
    env = {
        "DAGSTER_POSTGRES_USER": "postgres",
        "DAGSTER_POSTGRES_HOST": "127.0.0.1",
        "DAGSTER_POSTGRES_PORT": "5432",
        "DAGSTER_POSTGRES_DB": database,
    }
    fleet = start_fleet(fleet_dir, extra=["--no-daemon"], env=env)
    fleet.wait_loaded({"demo-A"})
    config = yaml.safe_load((fleet.state / "dagster_home" / "dagster.yaml").read_text())
    assert config["storage"]["postgres"]["postgres_db"]["db_name"] == {"env": "DAGSTER_POSTGRES_DB"}
    run_id = fleet.gql.launch("demo-A", "trivial_job")
    assert fleet.gql.wait_run(run_id) == "SUCCESS"
    conn = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname=database)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT status FROM runs WHERE run_id = %s", (run_id,))
            assert cur.fetchone() == ("SUCCESS",)
            cur.execute(
                "SELECT count(*) FROM event_logs WHERE run_id = %s AND dagster_event_type = %s",
                (run_id, "ASSET_MATERIALIZATION"),
            )
            assert cur.fetchone() == (3,)
    finally:
        conn.close()
    assert "sqlite" not in config["storage"]
