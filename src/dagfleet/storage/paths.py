"""The storage layout of one fleet, as strings (local paths or s3:// URLs)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from dagfleet.spec import Fleet

REPO_DIRS = ("assets", "runs", "logs")
ENV_DIRS = ("shared", "system", "temp")


def is_remote(root: str) -> bool:
    return "://" in root and not root.startswith("file://")


def resolve_root(root: str, fleet_dir: str | Path) -> str:
    """fleet.yaml's `storage.root`: s3://... as given, local roots absolute (relative
    to `fleet_dir`, the directory holding fleet.yaml)."""
    if is_remote(root):
        return root.rstrip("/")
    local = root.removeprefix("file://")
    path = Path(local) if os.path.isabs(local) else Path(fleet_dir) / local
    return os.path.abspath(path)


def storage_root(fleet: Fleet) -> str:
    """The fleet's storage root: s3://... as given, local roots absolute (relative to the fleet)."""
    return resolve_root(fleet.spec.storage.root, fleet.root)


def _join(root: str, *parts: str) -> str:
    if is_remote(root):
        return "/".join([root.rstrip("/"), *parts])
    return os.path.join(root, *parts)


@dataclass(frozen=True)
class StoragePaths:
    """Every prefix one location (repo x environment) is given."""

    root: str
    env_root: str
    prefix: str  # the repo's prefix under env_root (`repos/<repo>` or its s3_prefix)
    location: str
    assets: str
    runs: str
    logs: str
    shared: str
    system: str
    temp: str

    @property
    def remote(self) -> bool:
        return is_remote(self.root)


def location_dir(root: str, env: str, prefix: str) -> str:
    """Where one repo's data lives in `env`: `<root>/<env>/<prefix>`."""
    return _join(root, env, *prefix.split("/"))


def repo_prefix(fleet: Fleet, repo: str) -> str:
    """The repo's prefix under `<root>/<env>/`: its `s3_prefix`, else `repos/<repo>`."""
    spec = fleet.repos.get(repo)
    return spec.storage_prefix if spec is not None else f"repos/{repo}"


def storage_paths(fleet: Fleet, repo: str, env: str, root: str | None = None) -> StoragePaths:
    """The layout of `repo` in `env`, under the fleet's storage root or under `root`
    (where a renderer's containers see the same layout, e.g. a volume at /data).

    The repo's prefix is its `storage_prefix` (`repos/<repo>` unless the repo file
    sets `s3_prefix`); the loader refuses prefixes that equal or contain another
    repo's, so no location can be handed a prefix inside another's.
    """
    for name, value in (("repo", repo), ("env", env)):
        if not value or value in (".", "..") or "/" in value or "\\" in value or "\0" in value:
            raise ValueError(f"{name} {value!r} cannot name a storage prefix")
    prefix = repo_prefix(fleet, repo)
    root = storage_root(fleet) if root is None else root
    env_root = _join(root, env)
    location = location_dir(root, env, prefix)
    return StoragePaths(
        root=root,
        env_root=env_root,
        prefix=prefix,
        location=location,
        assets=_join(location, "assets"),
        runs=_join(location, "runs"),
        logs=_join(location, "logs"),
        shared=_join(env_root, "shared"),
        system=_join(env_root, "system"),
        temp=_join(env_root, "temp"),
    )
