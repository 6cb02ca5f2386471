"""Per-location checkouts: `<sha>/` directories and the `current` link consumers read."""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

from dagfleet.fsutil import atomic_symlink


def current_sha(location_dir: Path) -> str | None:
    """The SHA `current` points at, if the link exists and its target is present."""
    link = location_dir / "current"
    try:
        target = os.readlink(link)
    except OSError:
        return None
    return target if (location_dir / target).is_dir() else None


def publish(location_dir: Path, sha: str) -> None:
    """Make `sha` the live checkout: relative temp link renamed over `current`."""
    if not (location_dir / sha).is_dir():
        raise FileNotFoundError(f"{location_dir / sha} does not exist; export it first")
    atomic_symlink(sha, location_dir / "current")


def collect_garbage(location_dir: Path, keep: set[str]) -> list[str]:
    """Remove every checkout but `keep` (live and last good) and stale temp dirs."""
    removed: list[str] = []
    if not location_dir.is_dir():
        return removed
    live = current_sha(location_dir)
    if live:
        keep = keep | {live}
    for entry in location_dir.iterdir():
        if entry.name == "current" or entry.name.startswith(".current"):
            continue
        if entry.name in keep or not entry.is_dir() or entry.is_symlink():
            continue
        shutil.rmtree(entry, ignore_errors=True)
        removed.append(entry.name)
    for entry in location_dir.glob(".current.tmp-*"):
        with contextlib.suppress(OSError):
            entry.unlink()
    return removed
