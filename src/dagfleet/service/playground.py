"""An environment's playground files: their name rules and atomic writes.

Seed 000's developers `kubectl cp` a script into the playground directory and
click Reload; here a write is atomic, and the caller tells the runtime so the
playground loop hands over to a code server serving the new files. The API and
the CLI's offline path use the same rules, so both refuse a name in the same words.
"""

from __future__ import annotations

import hashlib
import keyword
import re
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel

from dagfleet.control import ControlError
from dagfleet.fsutil import atomic_write
from dagfleet.spec import FleetSpec

MAX_FILE_BYTES = 1024 * 1024
MAX_NAME_LENGTH = 100
# The loader imports `playground.<stem>`: the stem must be an importable module name.
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*\.py$")


def check_file_name(name: str) -> str | None:
    """Why `name` cannot be a playground file, or None (pure, like spec.names)."""
    if name == "__init__.py":
        return "'__init__.py' is the playground's loader, written by dagfleet: use another name"
    if "/" in name or "\\" in name or name in (".", ".."):
        return f"{name!r} has path parts: give a plain file name such as 'my_assets.py'"
    if name.startswith(("_", ".")):
        return f"{name!r} starts with {name[0]!r}: the loader skips such files, rename it"
    if not name.endswith(".py"):
        return f"{name!r} is not a Python file: playground files end in '.py'"
    if len(name) > MAX_NAME_LENGTH:
        return f"{name!r} is {len(name)} characters long: use at most {MAX_NAME_LENGTH}"
    if not _NAME.match(name) or keyword.iskeyword(name[:-3]):
        return (
            f"{name!r} is not an importable module name: use letters, digits and '_', "
            "starting with a letter, then '.py'"
        )
    return None


def check_size(name: str, size: int) -> str | None:
    if size > MAX_FILE_BYTES:
        return f"{name} is {size} bytes: playground files are limited to {MAX_FILE_BYTES} bytes"
    return None


class PlaygroundError(ControlError):
    """A refused playground request (the API's ControlError handler answers with its status)."""


def check_environment(fleet: FleetSpec, env: str) -> None:
    """Raise a PlaygroundError unless `env` exists and has a playground."""
    names = [e.name for e in fleet.environments]
    match = next((e for e in fleet.environments if e.name == env), None)
    if match is None:
        raise PlaygroundError(
            f"unknown environment {env!r}: fleet.yaml defines {', '.join(names)}; "
            "pick one of those or add the environment to fleet.yaml",
            404,
        )
    if not match.playground:
        raise PlaygroundError(
            f"environment {env} has no playground: set playground: true on "
            f"environment {env} in fleet.yaml",
            409,
        )


class PlaygroundFile(BaseModel):
    """One user file in a playground."""

    name: str
    size: int
    sha256: str
    modified: float


class PlaygroundListing(BaseModel):
    env: str
    location: str
    directory: str
    files: list[PlaygroundFile]


class PlaygroundWrite(BaseModel):
    env: str
    location: str
    file: PlaygroundFile
    created: bool


class PlaygroundDelete(BaseModel):
    env: str
    location: str
    name: str


def _describe(path: Path, data: bytes | None = None) -> PlaygroundFile:
    raw = path.read_bytes() if data is None else data
    return PlaygroundFile(
        name=path.name,
        size=len(raw),
        sha256=hashlib.sha256(raw).hexdigest(),
        modified=path.stat().st_mtime,
    )


@dataclass(frozen=True)
class PlaygroundFiles:
    """One environment's playground directory: validated names, atomic writes."""

    env: str
    directory: Path

    @property
    def location(self) -> str:
        return f"playground-{self.env}"

    def path(self, name: str) -> Path:
        problem = check_file_name(name)
        if problem is not None:
            raise PlaygroundError(problem, 422)
        return self.directory / name

    def list(self) -> PlaygroundListing:
        files = []
        if self.directory.is_dir():
            for path in sorted(self.directory.glob("*.py")):
                if check_file_name(path.name) is None and path.is_file():
                    files.append(_describe(path))
        return PlaygroundListing(
            env=self.env, location=self.location, directory=str(self.directory), files=files
        )

    def read(self, name: str) -> bytes:
        path = self.path(name)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise PlaygroundError(f"{name} is not in the playground of {self.env}", 404) from None

    def write(self, name: str, data: bytes) -> PlaygroundWrite:
        path = self.path(name)
        problem = check_size(name, len(data))
        if problem is not None:
            raise PlaygroundError(problem, 413)
        created = not path.exists()
        atomic_write(path, data)
        return PlaygroundWrite(
            env=self.env, location=self.location, file=_describe(path, data), created=created
        )

    def delete(self, name: str) -> PlaygroundDelete:
        path = self.path(name)
        try:
            path.unlink()
        except FileNotFoundError:
            raise PlaygroundError(f"{name} is not in the playground of {self.env}", 404) from None
        return PlaygroundDelete(env=self.env, location=self.location, name=name)
