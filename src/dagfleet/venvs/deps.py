"""The dependency hash of a checkout: which files decide what gets installed."""

from __future__ import annotations

import hashlib
from pathlib import Path

# Files whose content decides the environment. Code changes do not rebuild it.
DEPENDENCY_FILES = ("pyproject.toml", "uv.lock", "setup.py", "setup.cfg", ".python-version")
REQUIREMENTS_GLOB = "requirements*.txt"


def dependency_files(project: Path) -> list[Path]:
    files = [project / name for name in DEPENDENCY_FILES if (project / name).is_file()]
    files += sorted(p for p in project.glob(REQUIREMENTS_GLOB) if p.is_file())
    return files


def dependency_hash(project: Path, salt: str = "") -> str:
    """A short stable hash of the dependency files (and `salt`: the platform's own pins)."""
    digest = hashlib.sha256(salt.encode())
    for path in dependency_files(project):
        digest.update(path.name.encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]
