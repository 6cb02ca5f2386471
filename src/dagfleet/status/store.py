"""One JSON file per location under .dagfleet/status/, written atomically."""

from __future__ import annotations

import contextlib
from pathlib import Path

from pydantic import ValidationError

from dagfleet.fsutil import atomic_write
from dagfleet.status.conditions import LocationStatus


class StatusStore:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path(self, location: str) -> Path:
        return self.directory / f"{location}.json"

    def read(self, location: str) -> LocationStatus | None:
        try:
            return LocationStatus.model_validate_json(self.path(location).read_text())
        except (FileNotFoundError, ValidationError, ValueError):
            return None

    def write(self, status: LocationStatus) -> None:
        atomic_write(self.path(status.location), status.model_dump_json(indent=2))

    def all(self) -> list[LocationStatus]:
        out = []
        for path in sorted(self.directory.glob("*.json")):
            status = self.read(path.stem)
            if status is not None:
                out.append(status)
        return out

    def remove(self, location: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path(location).unlink()
