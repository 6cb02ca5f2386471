"""What kind of Python project a checkout holds, read from its files (pure, no installs).

dagfleet follows uv's own rules, so that what a location runs is what `uv sync`
(and the rendered Dockerfile) would install:

- A project is *packaged* when it declares a `[build-system]` or has a
  setup.py/setup.cfg, unless `[tool.uv] package = false`. Its own package is
  built by its backend (hatchling, setuptools, poetry-core, pdm-backend, ...)
  and installed for each commit. A pyproject without a build system is a
  *virtual* project, as in uv: only its dependencies are installed and its
  code is imported from the working directory.
- Dependencies come from uv.lock when there is one (frozen: the lock wins),
  else from every requirement source at once: requirements*.txt, and the
  project's own metadata (pyproject.toml, setup.py or setup.cfg), in one
  resolution with what dagfleet adds.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dagfleet.venvs.deps import REQUIREMENTS_GLOB


@dataclass(frozen=True)
class ProjectShape:
    root: Path
    locked: bool
    packaged: bool
    sources: tuple[Path, ...]  # requirement sources for an unlocked project

    @property
    def description(self) -> str:
        kind = "uv.lock" if self.locked else ", ".join(p.name for p in self.sources) or "none"
        return f"dependencies from {kind}; {'packaged' if self.packaged else 'virtual'} project"


def _pyproject(root: Path) -> dict[str, Any]:
    path = root / "pyproject.toml"
    if not path.is_file():
        return {}
    try:
        return tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError):
        return {}  # uv reports the file itself, with its line, when it reads it


def detect(root: Path) -> ProjectShape:
    data = _pyproject(root)
    has_setup = (root / "setup.py").is_file() or (root / "setup.cfg").is_file()
    uv_package = data.get("tool", {}).get("uv", {}).get("package")
    packaged = bool(data.get("build-system")) or has_setup
    if isinstance(uv_package, bool):
        packaged = uv_package
    locked = (root / "uv.lock").is_file() and (root / "pyproject.toml").is_file()
    sources = sorted(p for p in root.glob(REQUIREMENTS_GLOB) if p.is_file())
    declares = "project" in data or "poetry" in data.get("tool", {})
    if (root / "pyproject.toml").is_file() and (declares or data.get("build-system")):
        sources.append(root / "pyproject.toml")
    elif (root / "setup.py").is_file():
        sources.append(root / "setup.py")
    elif (root / "setup.cfg").is_file():
        sources.append(root / "setup.cfg")
    return ProjectShape(root, locked, packaged, tuple(sources))


def locked_version(root: Path, package: str) -> str | None:
    """The version uv.lock pins for `package`, if the project is locked and lists it."""
    path = root / "uv.lock"
    if not path.is_file():
        return None
    try:
        data = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError):
        return None
    for entry in data.get("package", []):
        if isinstance(entry, dict) and entry.get("name") == package:
            version = entry.get("version")
            return version if isinstance(version, str) else None
    return None
