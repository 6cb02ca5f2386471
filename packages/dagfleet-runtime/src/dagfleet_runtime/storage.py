"""The optional helper for user code: keys under the location's prefix, shared/ read-only.

    from dagfleet_runtime import LocationStorage
    storage = LocationStorage.from_env()
    path = storage.path("assets/sales/2024.parquet")      # local path or s3:// URL
    with storage.open_shared("reference/countries.csv") as fh: ...

It reads DAGFLEET_STORAGE_ROOT (the location's prefix) and DAGFLEET_SHARED
(the environment's shared prefix) given by dagfleet. Read-only means the
helper refuses write modes on shared/; on S3, IAM prefix policies are what
enforce it for code that bypasses the helper.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import IO, Any

from dagfleet_runtime.keys import PrefixEscapeError, confine_local, confine_remote, is_remote

ENDPOINT_VARS = ("DAGFLEET_S3_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")
_WRITE_MODES = frozenset("wax+")


def _resolve(root: str, key: str) -> str:
    if is_remote(root):
        return confine_remote(root, key)
    return confine_local(root.removeprefix("file://"), key)


@dataclass(frozen=True)
class LocationStorage:
    """A location's prefix (read-write) and its environment's shared prefix (read-only)."""

    root: str
    shared: str | None = None
    endpoint_url: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> LocationStorage:
        env = os.environ if environ is None else environ
        root = env.get("DAGFLEET_STORAGE_ROOT")
        if not root:
            raise RuntimeError(
                "DAGFLEET_STORAGE_ROOT is not set: dagfleet sets it for every code location; "
                "outside dagfleet, export it (a directory or s3://bucket/prefix)"
            )
        endpoint = next((env[v] for v in ENDPOINT_VARS if env.get(v)), None)
        return cls(root=root, shared=env.get("DAGFLEET_SHARED") or None, endpoint_url=endpoint)

    def path(self, key: str) -> str:
        """Where `key` lives under the location's prefix (local path or URL)."""
        return _resolve(self.root, key)

    def shared_path(self, key: str) -> str:
        """Where `key` lives under shared/; read it, do not write it."""
        if not self.shared:
            raise PrefixEscapeError("no shared prefix: DAGFLEET_SHARED is not set")
        return _resolve(self.shared, key)

    def storage_options(self) -> dict[str, Any]:
        """fsspec/s3fs options for the endpoint; credentials stay in the environment."""
        if not is_remote(self.root) or not self.endpoint_url:
            return {}
        return {"client_kwargs": {"endpoint_url": self.endpoint_url}}

    def open(self, key: str, mode: str = "rb") -> IO[Any]:
        return self._open(self.path(key), mode)

    def open_shared(self, key: str, mode: str = "rb") -> IO[Any]:
        if _WRITE_MODES & set(mode):
            raise PermissionError(f"{key!r}: shared/ is read-only for code locations")
        return self._open(self.shared_path(key), mode)

    def _open(self, target: str, mode: str) -> IO[Any]:
        if not is_remote(target):
            if _WRITE_MODES & set(mode):
                os.makedirs(os.path.dirname(target), exist_ok=True)
            return open(target, mode)
        import fsspec  # dagster depends on universal_pathlib, hence fsspec

        handle: IO[Any] = fsspec.open(target, mode, **self.storage_options()).open()
        return handle
