"""The central instance's configuration: dagster.yaml and workspace.yaml.

dagster.yaml is generated; fleet.yaml's `instance.dagster` (checked at load
against Dagster's own schema, see spec.instance_settings) is merged into it.

Run queueing: Dagster's QueuedRunCoordinator is polled by the daemon every
`dequeue_interval_seconds` (default 5 s), which alone adds up to 5 s to every
launch. dagfleet's default is the DefaultRunCoordinator: the webserver hands
the run straight to the location's code server, adding no latency. A fleet
that needs concurrency limits sets `instance.run_queue`, and gets the queue
polled every second.

Either coordinator is Dagster's own plus one step from dagfleet-runtime
(`dagfleet_runtime.runtags`): it tags every run with its repo, environment,
location and commit before launching or queueing it ("Runs know their commit",
docs/repositories.md).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from dagfleet.fsutil import atomic_write
from dagfleet.layout import Layout
from dagfleet.spec import Fleet, PostgresSpec

# dagster-postgres installs psycopg2, but SQLAlchemy 2.1 maps a bare "postgresql://"
# to psycopg 3; name the driver dagster-postgres was built for.
PG_SCHEME = "postgresql+psycopg2"
# The run coordinators that tag runs (Dagster's, plus tags): see dagfleet_runtime.runtags.
RUNTAGS_MODULE = "dagfleet_runtime.runtags"
POSTGRES_VARS = (
    "DAGSTER_POSTGRES_USER",
    "DAGSTER_POSTGRES_PASSWORD",
    "DAGSTER_POSTGRES_HOST",
    "DAGSTER_POSTGRES_PORT",
    "DAGSTER_POSTGRES_DB",
)


def postgres_from_env(environ: Mapping[str, str]) -> dict[str, Any] | None:
    """Seed 003's variables select Postgres; dagster.yaml refers to them, never copies them."""
    if not any(environ.get(v) for v in POSTGRES_VARS):
        return None
    config: dict[str, Any] = {
        "username": {"env": "DAGSTER_POSTGRES_USER"},
        "hostname": {"env": "DAGSTER_POSTGRES_HOST"},
        "db_name": {"env": "DAGSTER_POSTGRES_DB"},
        # Dagster refuses an `env:` reference to an unset variable; 5432 is the default.
        "port": {"env": "DAGSTER_POSTGRES_PORT"} if environ.get("DAGSTER_POSTGRES_PORT") else 5432,
        "scheme": PG_SCHEME,
    }
    if environ.get("DAGSTER_POSTGRES_PASSWORD"):
        config["password"] = {"env": "DAGSTER_POSTGRES_PASSWORD"}
    return config


def instance_packages(fleet: Fleet, environ: Mapping[str, str]) -> tuple[str, ...]:
    """What every location env needs for this instance, and only that: run workers load
    the instance (dagster-postgres when it stores in PostgreSQL, chosen by fleet.yaml or
    by seed 003's DAGSTER_POSTGRES_* variables), and step logs go to S3 with boto3 when
    the storage root is s3://."""
    extras: list[str] = []
    if fleet.spec.instance.postgres is not None or postgres_from_env(environ) is not None:
        extras.append("dagster-postgres")
    if fleet.spec.storage.is_s3:
        extras.append("boto3")
    return tuple(extras)


def postgres_from_spec(spec: PostgresSpec) -> dict[str, Any]:
    config: dict[str, Any] = {
        "username": spec.user,
        "hostname": spec.host,
        "port": spec.port,
        "db_name": spec.db,
        "scheme": PG_SCHEME,
    }
    if spec.password_env:
        config["password"] = {"env": spec.password_env}
    return config


def dagster_yaml(
    fleet: Fleet,
    home: Path,
    environ: Mapping[str, str],
    compute_logs: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The instance configuration (pure)."""
    config: dict[str, Any] = {"telemetry": {"enabled": False}}
    pg = (
        postgres_from_spec(fleet.spec.instance.postgres)
        if fleet.spec.instance.postgres
        else postgres_from_env(environ)
    )
    if pg is not None:
        config["storage"] = {"postgres": {"postgres_db": pg}}
    else:
        config["storage"] = {"sqlite": {"base_dir": str(home / "storage")}}
    queue = fleet.spec.instance.run_queue
    status_dir = str(Layout.for_fleet(Path(fleet.root)).status)
    if queue is None:
        config["run_coordinator"] = {
            "module": RUNTAGS_MODULE,
            "class": "TaggingRunCoordinator",
            "config": {"status_dir": status_dir},
        }
    else:
        config["run_coordinator"] = {
            "module": RUNTAGS_MODULE,
            "class": "TaggingQueuedRunCoordinator",
            "config": {
                "status_dir": status_dir,
                "max_concurrent_runs": queue.max_concurrent_runs,
                "dequeue_interval_seconds": queue.dequeue_interval_seconds,
                "dequeue_use_threads": True,
            },
        }
    config["run_launcher"] = {
        "module": "dagster._core.launcher",
        "class": "DefaultRunLauncher",
    }
    config["local_artifact_storage"] = {
        "module": "dagster._core.storage.root",
        "class": "LocalArtifactStorage",
        "config": {"base_dir": str(home)},
    }
    if compute_logs:
        config["compute_logs"] = compute_logs
    # fleet.yaml's `instance.dagster`: the loader refused keys set above, so the
    # user's settings add to the generated ones (and win for telemetry).
    config.update(fleet.spec.instance.dagster)
    return config


def foreign_dagster_home(environ: Mapping[str, str], home: Path) -> str | None:
    """A warning when the user's DAGSTER_HOME is set to another instance than dagfleet's."""
    theirs = environ.get("DAGSTER_HOME")
    if not theirs or Path(theirs).expanduser().resolve() == home.resolve():
        return None
    return (
        f"DAGSTER_HOME is set to {theirs}, but dagfleet runs its own instance in {home}; "
        "its dagster.yaml is not read: put instance settings (run_monitoring, run_retries, "
        "retention, ...) under `instance.dagster` in fleet.yaml (see docs/instance.md)"
    )


def workspace_yaml(entries: list[tuple[str, Path]]) -> dict[str, Any]:
    """One grpc_server entry per location, addressed by its stable socket path."""
    return {
        "load_from": [
            {"grpc_server": {"socket": str(sock), "location_name": name}} for name, sock in entries
        ]
    }


def write_instance(home: Path, config: dict[str, Any]) -> None:
    home.mkdir(parents=True, exist_ok=True)
    atomic_write(home / "dagster.yaml", yaml.safe_dump(config, sort_keys=False))


def write_workspace(home: Path, config: dict[str, Any]) -> bool:
    """Write workspace.yaml; True when its content changed."""
    path = home / "workspace.yaml"
    text = yaml.safe_dump(config, sort_keys=False)
    if path.exists() and path.read_text() == text:
        return False
    atomic_write(path, text)
    return True


def instance_env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["DAGSTER_HOME"] = str(home)
    return env


def prepare_storage(home: Path) -> None:
    """Create or migrate the instance's tables once, before any process opens them.

    With SQLite, a webserver and several code servers starting together race to
    create the same tables ("table runs already exists").
    """
    from dagster import DagsterInstance

    inst = DagsterInstance.from_config(str(home))
    try:
        inst.get_runs(limit=1)
        inst.all_instigator_state()
    finally:
        inst.dispose()
