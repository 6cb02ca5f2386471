"""A Dagster instance whose dagster.yaml carries dagfleet's compute-log section."""

from __future__ import annotations

from pathlib import Path

import yaml
from dagster import DagsterInstance

from dagfleet.spec import Fleet
from dagfleet.storage import compute_logs_config


def instance_with_compute_logs(home: Path, fleet: Fleet) -> DagsterInstance:
    """SQLite storage under `home`, compute logs routed the way `dagfleet up` routes them."""
    config = {
        "storage": {"sqlite": {"base_dir": str(home / "storage")}},
        "compute_logs": compute_logs_config(fleet),
        "telemetry": {"enabled": False},
    }
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    return DagsterInstance.from_config(str(home))
