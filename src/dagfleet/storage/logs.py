"""The `compute_logs:` section of the central dagster.yaml.

Step stdout/stderr are routed per run's code location by
`dagfleet_runtime.LocationComputeLogManager` into
`<root>/<env>/<repo prefix>/logs/<run_id>/compute_logs/`. The run worker
(location venv) and the webserver (dagfleet's venv) both load this section,
which is why dagfleet-runtime is installed in both.

With an s3:// root the logs are captured on the local disk in the same layout
under the instance's home (the UI reads them from there), and each finished
capture is copied to `<root>/<env>/<repo prefix>/logs/` in the bucket.

Repo prefixes (`repos/<repo>`, or the repo's `s3_prefix`) are not part of
dagster.yaml, which the webserver reads once: they are kept in a JSON file
beside it that the manager reads again when it changes (`write_prefixes`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dagfleet.fsutil import atomic_write
from dagfleet.layout import Layout
from dagfleet.spec import Fleet
from dagfleet.storage.paths import is_remote, storage_root

MANAGER_MODULE = "dagfleet_runtime.compute_logs"
MANAGER_CLASS = "LocationComputeLogManager"
PREFIXES_FILE = "storage_prefixes.json"


def _home(fleet: Fleet) -> Path:
    return Layout.for_fleet(Path(fleet.root)).dagster_home


def prefixes_document(fleet: Fleet) -> str:
    """The JSON `{repo: prefix}` the compute log manager routes by (pure).

    The manager takes a location name apart as `<repo>-<env>`; a monorepo's
    locations are `<repo>-<entry>-<env>`, so `<repo>-<entry>` is listed too, with
    the repo's prefix: storage is per repository, shared by its locations.
    """
    prefixes = {
        repo.base_name(entry): repo.storage_prefix
        for repo in fleet.repos.values()
        for entry in repo.entry_names()
    }
    prefixes = dict(sorted(prefixes.items()))
    return json.dumps(prefixes, indent=2, sort_keys=True) + "\n"


def write_prefixes(fleet: Fleet) -> bool:
    """Write the prefixes file under the fleet's dagster home; True when it changed."""
    path = _home(fleet) / PREFIXES_FILE
    text = prefixes_document(fleet)
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return False
    atomic_write(path, text)
    return True


def compute_logs_config(fleet: Fleet) -> dict[str, Any]:
    """The dagster.yaml `compute_logs` value for this fleet (pure)."""
    home = _home(fleet)
    root = storage_root(fleet)
    local_root = str(home / "compute_logs" / "locations") if is_remote(root) else root
    config: dict[str, Any] = {
        "base_dir": str(home / "compute_logs"),
        "storage_root": local_root,
        "environments": [e.name for e in fleet.spec.environments],
        "prefixes_file": str(home / PREFIXES_FILE),
    }
    if is_remote(root):
        config["upload_root"] = root
        if fleet.spec.storage.endpoint_url:
            config["upload_endpoint_url"] = fleet.spec.storage.endpoint_url
    return {"module": MANAGER_MODULE, "class": MANAGER_CLASS, "config": config}
