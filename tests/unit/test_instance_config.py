"""The central instance's dagster.yaml and workspace.yaml, checked against Dagster itself.

Tests marked slow import Dagster (about 2 s) to validate against its own schemas.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from dagfleet.runtime.instance import (
    dagster_yaml,
    workspace_yaml,
    write_instance,
    write_workspace,
)
from dagfleet.spec import Fleet, FleetSpec

pytestmark = pytest.mark.unit

# dagster-postgres is built for psycopg2; SQLAlchemy 2.1 would pick psycopg 3 otherwise.
SCHEME = "postgresql+psycopg2"
PG_ENV = {
    "DAGSTER_POSTGRES_USER": "dagster_user",
    "DAGSTER_POSTGRES_PASSWORD": "s3cr3t-pw-value",
    "DAGSTER_POSTGRES_HOST": "db.internal",
    "DAGSTER_POSTGRES_PORT": "6543",
    "DAGSTER_POSTGRES_DB": "dagster_db",
}


def fleet(instance: dict[str, Any] | None = None) -> Fleet:
    spec = FleetSpec.model_validate({"environments": [{"name": "A"}], "instance": instance or {}})
    return Fleet(root="/fleet", spec=spec)


def env_refs(*names: str) -> dict[str, Any]:
    refs: dict[str, Any] = {
        n: {"env": v}
        for n, v in zip(("username", "hostname", "db_name", "port"), names, strict=True)
    }
    return {**refs, "scheme": SCHEME}


@pytest.mark.parametrize(
    ("case", "instance", "environ", "storage"),
    [
        ("sqlite by default", None, {}, {"sqlite": {"base_dir": "/home/storage"}}),
        (
            "empty postgres variables do not select postgres",
            None,
            {"DAGSTER_POSTGRES_HOST": ""},
            {"sqlite": {"base_dir": "/home/storage"}},
        ),
        (
            "postgres from the fleet spec, password by reference",
            {
                "postgres": {
                    "host": "pg",
                    "port": 5433,
                    "user": "u",
                    "db": "d",
                    "password_env": "PGPW",
                }
            },
            {},
            {
                "postgres": {
                    "postgres_db": {
                        "username": "u",
                        "hostname": "pg",
                        "port": 5433,
                        "db_name": "d",
                        "scheme": SCHEME,
                        "password": {"env": "PGPW"},
                    }
                }
            },
        ),
        (
            "postgres from the spec without a password",
            {"postgres": {}},
            {},
            {
                "postgres": {
                    "postgres_db": {
                        "username": "postgres",
                        "hostname": "127.0.0.1",
                        "port": 5432,
                        "db_name": "postgres",
                        "scheme": SCHEME,
                    }
                }
            },
        ),
        (
            "the spec wins over seed 003's variables",
            {"postgres": {"host": "from-spec"}},
            PG_ENV,
            {
                "postgres": {
                    "postgres_db": {
                        "username": "postgres",
                        "hostname": "from-spec",
                        "port": 5432,
                        "db_name": "postgres",
                        "scheme": SCHEME,
                    }
                }
            },
        ),
        (
            "seed 003's variables, referenced not copied",
            None,
            PG_ENV,
            {
                "postgres": {
                    "postgres_db": {
                        **env_refs(
                            "DAGSTER_POSTGRES_USER",
                            "DAGSTER_POSTGRES_HOST",
                            "DAGSTER_POSTGRES_DB",
                            "DAGSTER_POSTGRES_PORT",
                        ),
                        "password": {"env": "DAGSTER_POSTGRES_PASSWORD"},
                    }
                }
            },
        ),
        (
            "no password variable, no password entry",
            None,
            {k: v for k, v in PG_ENV.items() if k != "DAGSTER_POSTGRES_PASSWORD"},
            {
                "postgres": {
                    "postgres_db": env_refs(
                        "DAGSTER_POSTGRES_USER",
                        "DAGSTER_POSTGRES_HOST",
                        "DAGSTER_POSTGRES_DB",
                        "DAGSTER_POSTGRES_PORT",
                    )
                }
            },
        ),
    ],
)
def test_storage(
    case: str, instance: dict[str, Any] | None, environ: dict[str, str], storage: dict[str, Any]
) -> None:
    config = dagster_yaml(fleet(instance), Path("/home"), environ)
    assert config["storage"] == storage
    text = yaml.safe_dump(config)
    for secret in ("s3cr3t-pw-value", "dagster_user", "db.internal", "6543"):
        assert secret not in text


@pytest.mark.parametrize(
    ("run_queue", "coordinator"),
    [
        (None, {"module": "dagfleet_runtime.runtags", "class": "TaggingRunCoordinator"}),
        (
            {},
            {
                "module": "dagfleet_runtime.runtags",
                "class": "TaggingQueuedRunCoordinator",
                "config": {
                    "max_concurrent_runs": 10,
                    "dequeue_interval_seconds": 1,
                    "dequeue_use_threads": True,
                },
            },
        ),
        (
            {"max_concurrent_runs": 3, "dequeue_interval_seconds": 2},
            {
                "module": "dagfleet_runtime.runtags",
                "class": "TaggingQueuedRunCoordinator",
                "config": {
                    "max_concurrent_runs": 3,
                    "dequeue_interval_seconds": 2,
                    "dequeue_use_threads": True,
                },
            },
        ),
    ],
)
def test_run_coordinator(run_queue: dict[str, int] | None, coordinator: dict[str, Any]) -> None:
    instance = None if run_queue is None else {"run_queue": run_queue}
    config = dagster_yaml(fleet(instance), Path("/home"), {})
    # The coordinator tags runs from the fleet's status files (see dagfleet_runtime.runtags).
    status_dir = config["run_coordinator"]["config"].pop("status_dir")
    assert status_dir.endswith("/.dagfleet/status")
    if not config["run_coordinator"]["config"]:
        del config["run_coordinator"]["config"]
    assert config["run_coordinator"] == coordinator


def test_fixed_sections_and_compute_logs() -> None:
    logs = {"module": "m", "class": "C", "config": {}}
    config = dagster_yaml(fleet(), Path("/h"), {}, compute_logs=logs)
    assert config["telemetry"] == {"enabled": False}
    assert config["run_launcher"]["class"] == "DefaultRunLauncher"
    assert config["local_artifact_storage"]["config"] == {"base_dir": "/h"}
    assert config["compute_logs"] == logs
    assert "compute_logs" not in dagster_yaml(fleet(), Path("/h"), {})


def test_workspace_yaml_lists_one_grpc_server_per_location() -> None:
    config = workspace_yaml([("sales-A", Path("/run/a.sock")), ("sales-B", Path("/run/b.sock"))])
    assert config == {
        "load_from": [
            {"grpc_server": {"socket": "/run/a.sock", "location_name": "sales-A"}},
            {"grpc_server": {"socket": "/run/b.sock", "location_name": "sales-B"}},
        ]
    }
    assert workspace_yaml([]) == {"load_from": []}


def test_write_workspace_reports_changes_only(tmp_path: Path) -> None:
    one = workspace_yaml([("sales-A", Path("/run/a.sock"))])
    two = workspace_yaml([("sales-A", Path("/run/a.sock")), ("sales-B", Path("/run/b.sock"))])
    assert write_workspace(tmp_path, one) is True
    assert write_workspace(tmp_path, one) is False
    assert write_workspace(tmp_path, two) is True
    assert yaml.safe_load((tmp_path / "workspace.yaml").read_text()) == two
    assert write_workspace(tmp_path, one) is True
    assert sorted(p.name for p in tmp_path.iterdir()) == ["workspace.yaml"]


@pytest.mark.slow
def test_workspace_yaml_is_valid_for_dagster(tmp_path: Path) -> None:
    from dagster._core.workspace.config_schema import ensure_workspace_config

    config = workspace_yaml([("sales-A", tmp_path / "a.sock")])
    validated = ensure_workspace_config(config, str(tmp_path / "workspace.yaml"))
    assert validated["load_from"][0]["grpc_server"]["location_name"] == "sales-A"


def load_instance(home: Path, instance: dict[str, Any] | None) -> Any:
    from dagster import DagsterInstance

    write_instance(home, dagster_yaml(fleet(instance), home, {}))
    return DagsterInstance.from_config(str(home))


@pytest.mark.slow
def test_dagster_loads_the_default_sqlite_instance(tmp_path: Path) -> None:
    from dagster._core.run_coordinator import DefaultRunCoordinator, QueuedRunCoordinator
    from dagster._core.storage.runs import SqliteRunStorage

    home = tmp_path / "dagster_home"
    instance = load_instance(home, None)
    try:
        # DefaultRunCoordinator is Dagster's name for SyncInMemoryRunCoordinator.
        assert isinstance(instance.run_coordinator, DefaultRunCoordinator)
        assert not isinstance(instance.run_coordinator, QueuedRunCoordinator)
        assert isinstance(instance.run_storage, SqliteRunStorage)
        assert instance.get_runs(limit=1) == []
        assert (home / "storage").is_dir()
    finally:
        instance.dispose()


@pytest.mark.slow
def test_dagster_loads_the_queued_instance(tmp_path: Path) -> None:
    from dagster._core.run_coordinator import QueuedRunCoordinator

    instance = load_instance(tmp_path / "home", {"run_queue": {"max_concurrent_runs": 3}})
    try:
        coordinator = instance.run_coordinator
        assert isinstance(coordinator, QueuedRunCoordinator)
        assert coordinator.dequeue_interval_seconds == 1
        assert coordinator.dequeue_use_threads is True
        assert coordinator.get_run_queue_config().max_concurrent_runs == 3
    finally:
        instance.dispose()


def postgres_check(config: dict[str, Any]) -> Any:
    """Validate the postgres section with dagster-postgres' own schema, without connecting."""
    from dagster._config import process_config, resolve_to_config_type
    from dagster_postgres import DagsterPostgresStorage

    schema = resolve_to_config_type(DagsterPostgresStorage.config_type())
    return process_config(schema, config["storage"]["postgres"])


@pytest.mark.slow
def test_postgres_from_variables_resolves_through_dagster(monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in PG_ENV.items():
        monkeypatch.setenv(k, v)
    result = postgres_check(dagster_yaml(fleet(), Path("/h"), PG_ENV))
    assert result.success, result.errors
    db = result.value["postgres_db"]
    assert (db["username"], db["password"], db["hostname"], db["port"], db["db_name"]) == (
        "dagster_user",
        "s3cr3t-pw-value",
        "db.internal",
        6543,
        "dagster_db",
    )


@pytest.mark.slow
def test_postgres_from_spec_resolves_through_dagster(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGPW", "from-env")
    config = dagster_yaml(fleet({"postgres": {"password_env": "PGPW"}}), Path("/h"), {})
    result = postgres_check(config)
    assert result.success, result.errors
    assert result.value["postgres_db"]["password"] == "from-env"


@pytest.mark.slow
def test_postgres_variables_without_a_port_use_the_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    environ = {k: v for k, v in PG_ENV.items() if k != "DAGSTER_POSTGRES_PORT"}
    monkeypatch.delenv("DAGSTER_POSTGRES_PORT", raising=False)
    for k, v in environ.items():
        monkeypatch.setenv(k, v)
    result = postgres_check(dagster_yaml(fleet(), Path("/h"), environ))
    assert result.success, result.errors
    assert result.value["postgres_db"]["port"] == 5432


def test_envs_get_the_storage_client_only_when_the_instance_uses_it(tmp_path: Path) -> None:
    from dagfleet.runtime.instance import instance_packages
    from dagfleet.spec import Fleet, FleetSpec

    plain = Fleet(root=str(tmp_path), spec=FleetSpec(environments=[{"name": "A"}]))
    assert instance_packages(plain, {}) == ()
    assert instance_packages(plain, {"DAGSTER_POSTGRES_HOST": "db"}) == ("dagster-postgres",)
    pg = FleetSpec(environments=[{"name": "A"}], instance={"postgres": {}})
    s3 = FleetSpec(environments=[{"name": "A"}], storage={"root": "s3://b/p"})
    assert instance_packages(Fleet(root=str(tmp_path), spec=pg), {}) == ("dagster-postgres",)
    assert instance_packages(Fleet(root=str(tmp_path), spec=s3), {}) == ("boto3",)
