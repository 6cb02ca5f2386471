"""The `compute_logs:` section of the central dagster.yaml.

Step stdout/stderr are routed per run's code location by
`dagfleet_runtime.LocationComputeLogManager` into
`<root>/<env>/repos/<repo>/logs/<run_id>/compute_logs/`. The run worker
(location venv) and the webserver (dagfleet's venv) both load this section,
which is why dagfleet-runtime is installed in both.

With an s3:// root the logs are captured on the local disk in the same layout
under the instance's home (the UI reads them from there), and each finished
capture is copied to `<root>/<env>/repos/<repo>/logs/` in the bucket.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dagfleet.layout import Layout
from dagfleet.spec import Fleet
from dagfleet.storage.paths import is_remote, storage_root

MANAGER_MODULE = "dagfleet_runtime.compute_logs"
MANAGER_CLASS = "LocationComputeLogManager"


def compute_logs_config(fleet: Fleet) -> dict[str, Any]:
    """The dagster.yaml `compute_logs` value for this fleet (pure)."""
    home = Layout.for_fleet(Path(fleet.root)).dagster_home
    root = storage_root(fleet)
    local_root = str(home / "compute_logs" / "locations") if is_remote(root) else root
    config: dict[str, Any] = {
        "base_dir": str(home / "compute_logs"),
        "storage_root": local_root,
        "environments": [e.name for e in fleet.spec.environments],
    }
    if is_remote(root):
        config["upload_root"] = root
        if fleet.spec.storage.endpoint_url:
            config["upload_endpoint_url"] = fleet.spec.storage.endpoint_url
    return {"module": MANAGER_MODULE, "class": MANAGER_CLASS, "config": config}
