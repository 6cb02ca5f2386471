"""Which storage prefix a run's step logs belong to: the part both compute log managers share.

A run's location is read from its run record (see `location_of_run`), the
location name `<repo>-<env>` is taken apart with the fleet's environment names,
and the repo's prefix (`repos/<repo>`, or the repo file's `s3_prefix`) is looked
up. `LocationRouter` turns a run id into the path segments of its location's
`logs/` below the storage root:

    <env>/<repo prefix>/logs

The local manager (compute_logs) joins them to a directory, the S3 manager
(s3_compute_logs) to a key prefix. Repo prefixes come from the render (a fixed
mapping in dagster.yaml) and/or from dagfleet's prefixes file (JSON), which is
read again whenever it changes so repos added while the instance runs are routed
too; the file wins for a repo it names.

Nothing here touches a disk or a bucket except reading the prefixes file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

LOCATION_TAG = "dagfleet/location"
_CACHE_LIMIT = 4096


def split_location(location: str, environments: Sequence[str] = ()) -> tuple[str, str] | None:
    """`<repo>-<env>` -> (repo, env).

    Environment names may hold '-', so known environments are matched first,
    longest first; without a list the last '-' separates them.
    """
    for env in sorted(environments, key=len, reverse=True):
        suffix = f"-{env}"
        if location.endswith(suffix) and len(location) > len(suffix):
            return location[: -len(suffix)], env
    if environments or "-" not in location:
        return None
    repo, _, env = location.rpartition("-")
    return (repo, env) if repo and env else None


def safe_segment(part: str) -> bool:
    """One path segment that cannot leave its parent (no '', '.', '..', separators, NUL)."""
    return part not in ("", ".", "..") and "/" not in part and "\\" not in part and "\0" not in part


def prefix_segments(prefix: Any) -> list[str] | None:
    """`"a/b"` -> `["a", "b"]`, or None when it is not a string or could leave the root."""
    if not isinstance(prefix, str):
        return None
    parts = prefix.split("/")
    return parts if all(safe_segment(p) for p in parts) else None


def parse_prefixes(data: Any) -> dict[str, list[str]]:
    """`{repo: "a/b"}` -> `{repo: ["a", "b"]}`, dropping anything that could leave the root."""
    out: dict[str, list[str]] = {}
    if isinstance(data, Mapping):
        for repo, prefix in data.items():
            parts = prefix_segments(prefix)
            if isinstance(repo, str) and parts is not None:
                out[repo] = parts
    return out


def read_prefixes(path: str) -> dict[str, list[str]]:
    """The prefixes file (`{repo: "a/b"}` JSON), parsed; empty when unreadable."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return {}
    return parse_prefixes(data)


def location_of_run(instance: Any, run_id: str) -> str | None:
    """The code location of a run, from its record.

    The run's `remote_job_origin` is authoritative (runs launched from the UI or
    GraphQL); runs started from the Python API have no origin and may carry the
    `dagfleet/location` tag instead.
    """
    run = instance.get_run_by_id(run_id)
    if run is None:
        return None
    if run.remote_job_origin is not None:
        name: str = run.remote_job_origin.location_name
        return name
    tagged: str | None = run.tags.get(LOCATION_TAG)
    return tagged


class LocationRouter:
    """Run id -> the segments of its location's `logs/` below the storage root."""

    def __init__(
        self,
        environments: Sequence[str] = (),
        prefixes: Mapping[str, str] | None = None,
        prefixes_file: str | None = None,
    ) -> None:
        self.environments = tuple(environments)
        self._fixed = parse_prefixes(prefixes or {})
        self._prefixes_file = prefixes_file
        self._from_file: dict[str, list[str]] = {}
        self._file_stamp: tuple[int, int] | None = None
        # run id -> its segments (None: a known location that does not parse).
        self._runs: dict[str, tuple[str, ...] | None] = {}

    def repo_prefix(self, repo: str) -> list[str]:
        """The repo's prefix as path segments (the prefixes file, the fixed mapping, the
        default `repos/<repo>`, in that order)."""
        if self._prefixes_file:
            try:
                st = os.stat(self._prefixes_file)
            except OSError:
                st = None
            stamp = (st.st_mtime_ns, st.st_size) if st is not None else None
            if stamp != self._file_stamp:
                self._from_file = read_prefixes(self._prefixes_file) if stamp else {}
                self._file_stamp = stamp
                self._runs.clear()
        return self._from_file.get(repo) or self._fixed.get(repo) or ["repos", repo]

    def logs_segments(self, location: str) -> list[str] | None:
        """`[<env>, *<repo prefix>, "logs"]` of a location name, if it parses."""
        parsed = split_location(location, self.environments)
        if parsed is None:
            return None
        repo, env = parsed
        if not (safe_segment(repo) and safe_segment(env)):
            return None
        return [env, *self.repo_prefix(repo), "logs"]

    def segments_for_run(self, instance: Any, run_id: str) -> list[str] | None:
        """The run's `logs/` segments, or None (no instance, unknown run, unknown location).

        Only runs whose location is known are cached: a run record may appear later.
        """
        if self._prefixes_file:
            self.repo_prefix("")  # notice a changed prefixes file before using the cache
        if run_id in self._runs:
            cached = self._runs[run_id]
            return list(cached) if cached is not None else None
        if instance is None:
            return None
        location = location_of_run(instance, run_id)
        if location is None:
            return None
        segments = self.logs_segments(location)
        if len(self._runs) >= _CACHE_LIMIT:
            self._runs.clear()
        self._runs[run_id] = tuple(segments) if segments is not None else None
        return segments
