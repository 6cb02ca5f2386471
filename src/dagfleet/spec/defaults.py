"""The embedded default fleet: seed 000's environments A and B serving the medallion example."""

from __future__ import annotations

from typing import Any

DEFAULT_FLEET_NAME = "dagfleet"
MEDALLION_REPO = "medallion"


def default_fleet_document(storage_root: str = ".dagfleet/data") -> dict[str, Any]:
    """fleet.yaml of the default fleet (A debuggable as in seed 000, both with playgrounds)."""
    return {
        "name": DEFAULT_FLEET_NAME,
        "instance": {
            "webserver": {"host": "127.0.0.1", "port": 3000},
            "api": {"host": "127.0.0.1", "port": 3030},
        },
        "storage": {"root": storage_root},
        "defaults": {"poll_interval": 10},
        "environments": [
            {"name": "A", "branch": "A", "debug": True, "playground": True},
            {"name": "B", "branch": "B", "playground": True},
        ],
    }


def medallion_repo_document(git_url: str) -> dict[str, Any]:
    """repos/medallion.yaml: seed 001's pipeline, branch A in A and B in B."""
    return {
        "name": MEDALLION_REPO,
        "git_url": git_url,
        "branches": {"A": "A", "B": "B"},
        "module_name": "medallion.definitions",
        "resources": {"cpu": 256, "memory": 512},
        "s3_prefix": f"repos/{MEDALLION_REPO}",
    }
