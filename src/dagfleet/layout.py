"""Where everything lives under `.dagfleet/` (see design.md, "State on disk")."""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

STATE_DIR = ".dagfleet"


@dataclass(frozen=True)
class Layout:
    """Paths of one fleet's state; built once from the fleet root and passed down."""

    root: Path

    @classmethod
    def for_fleet(cls, fleet_root: Path) -> Layout:
        """State lives in `<fleet>/.dagfleet`; the embedded default fleet *is* `.dagfleet`."""
        root = fleet_root.resolve()
        return cls(root if root.name == STATE_DIR else root / STATE_DIR)

    @property
    def git(self) -> Path:
        return self.root / "git"

    def mirror(self, repo: str) -> Path:
        return self.git / f"{repo}.git"

    def checkouts(self, location: str) -> Path:
        return self.root / "checkouts" / location

    def current(self, location: str) -> Path:
        return self.checkouts(location) / "current"

    def builds(self, repo: str) -> Path:
        """Prepared trees (project installed, build steps run) per (commit, key)."""
        return self.root / "builds" / repo

    @property
    def venvs(self) -> Path:
        return self.root / "venvs"

    @property
    def dagster_home(self) -> Path:
        return self.root / "dagster_home"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    def log(self, location: str) -> Path:
        return self.logs / f"{location}.log"

    @property
    def status(self) -> Path:
        return self.root / "status"

    def playground(self, env: str) -> Path:
        return self.root / "playground" / env / "playground"

    @property
    def run(self) -> Path:
        """Unix sockets of the code servers.

        Socket paths are limited to 107 bytes, and fleets live in deep directories,
        so sockets go to a short per-fleet directory under the system temp dir.
        """
        digest = hashlib.sha256(str(self.root).encode()).hexdigest()[:12]
        base = Path(os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir())
        return base / f"dagfleet-{digest}"

    def socket(self, location: str) -> Path:
        return self.run / f"{location}.sock"
