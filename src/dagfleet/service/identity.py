"""A fleet's identity: the name in fleet.yaml and an id made once per fleet directory."""

from __future__ import annotations

import contextlib
import os
import uuid
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from dagfleet.layout import Layout

ID_FILE = "fleet-id"


def fleet_id(layout: Layout) -> str:
    """The fleet's stable id: read from its state directory, made there the first time.

    Creation is exclusive (O_EXCL), so a CLI and a starting fleet that race both
    end up with the id that was written first.
    """
    path = layout.root / ID_FILE
    with contextlib.suppress(FileNotFoundError):
        existing = path.read_text(encoding="utf-8").strip()
        if existing:
            return existing
    layout.root.mkdir(parents=True, exist_ok=True)
    made = uuid.uuid4().hex[:16]
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return path.read_text(encoding="utf-8").strip() or made
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(made + "\n")
    return made


def dagfleet_version() -> str:
    try:
        return version("dagfleet")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0+unknown"


def same_fleet(a: Path, b: Path) -> bool:
    """Whether two fleet directories are one (the embedded default is its own state dir)."""
    return Layout.for_fleet(a).root == Layout.for_fleet(b).root
