"""Create a location's local directories (object stores need none)."""

from __future__ import annotations

from pathlib import Path

from dagfleet.spec import Fleet
from dagfleet.storage.paths import storage_paths


def ensure_layout(fleet: Fleet, repo: str, env: str) -> list[Path]:
    """mkdir -p the location's assets/runs/logs and the env's shared/system/temp.

    Idempotent; returns the directories (empty for an s3:// root, where prefixes
    exist as soon as an object is written).
    """
    p = storage_paths(fleet, repo, env)
    if p.remote:
        return []
    dirs = [Path(d) for d in (p.assets, p.runs, p.logs, p.shared, p.system, p.temp)]
    for d in dirs:
        d.mkdir(parents=True, exist_ok=True)
    return dirs
