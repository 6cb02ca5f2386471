"""Step logs in S3 under each run's location prefix: the manager of the rendered deployments.

Dagster's `dagster_aws` S3ComputeLogManager uploads each step's stdout/stderr
from the run worker (every `upload_interval` seconds while a step runs, and when
it ends) and reads them back in the webserver, under one key prefix per
instance: `<prefix>/storage/<run_id>/compute_logs/<step>.{out,err}`. This
subclass changes one thing, the key's directory, chosen per run's code location
(`<repo>-<env>`) as the local manager does (`dagfleet_runtime.locations`):

    <location_root>/<env>/<repo prefix>/logs/<run_id>/compute_logs/<step>.{out,err}

which is the location's own storage prefix (`<root>/<env>/repos/<repo>`, or the
repo file's `s3_prefix`), the same layout `dagfleet up` writes locally. Keys
that belong to no known location (a run of a location dagfleet does not know,
sensor and schedule tick logs, whose keys are not run ids) keep the stock
layout under `prefix`.

Everything that names a key goes through `_resolve_path_for_namespace` (uploads,
the UI's reads and completeness checks, partial uploads, download URLs, listing),
so that is the one method overridden; `delete_logs` by prefix builds its key
without it and is overridden to match. The run's location comes from its record
in the instance storage, which the run worker (writing, in the run pod or task)
and the webserver (reading) share, so both compute the same key.

Repo prefixes: `repo_prefixes` (`{repo: prefix}`, written by the render from the
fleet's repo files) and, optionally, `prefixes_file` (dagfleet's JSON file,
re-read when it changes). Needs dagster-aws (every image dagfleet renders carries
it); nothing else of dagfleet.
"""

from __future__ import annotations

import logging
from collections.abc import Generator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from dagster import Array, Field, Permissive, StringSource
from dagster._core.storage.compute_log_manager import CapturedLogContext, ComputeIOType
from dagster._core.storage.local_compute_log_manager import IO_TYPE_EXTENSION
from dagster._serdes import ConfigurableClassData
from dagster_aws.s3.compute_log_manager import S3ComputeLogManager

from dagfleet_runtime.locations import LocationRouter
from dagfleet_runtime.runtags import stamp_run_once

logger = logging.getLogger(__name__)

# The settings this class adds to S3ComputeLogManager's.
OWN_SETTINGS = ("location_root", "environments", "repo_prefixes", "prefixes_file")


class LocationS3ComputeLogManager(S3ComputeLogManager):
    """S3ComputeLogManager whose keys live under each run's location prefix."""

    def __init__(
        self,
        bucket: str,
        location_root: str = "",
        environments: Sequence[str] | None = None,
        repo_prefixes: Mapping[str, str] | None = None,
        prefixes_file: str | None = None,
        inst_data: ConfigurableClassData | None = None,
        **stock: Any,
    ) -> None:
        super().__init__(bucket, inst_data=inst_data, **stock)
        self._location_root = "/".join(p for p in (location_root or "").split("/") if p)
        self._router = LocationRouter(environments or (), repo_prefixes, prefixes_file)
        self._stamped: set[str] = set()  # runs this process has tagged (see runtags)

    @classmethod
    def config_type(cls) -> dict[str, Any]:
        stock: dict[str, Any] = dict(S3ComputeLogManager.config_type())
        return {
            **stock,
            # The storage root's key prefix in the bucket ("" for the bucket's root).
            "location_root": Field(StringSource, is_required=False, default_value=""),
            "environments": Field(Array(str), is_required=False),
            "repo_prefixes": Field(Permissive(), is_required=False),
            "prefixes_file": Field(StringSource, is_required=False),
        }

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData | None, config_value: Mapping[str, Any]
    ) -> LocationS3ComputeLogManager:
        return cls(inst_data=inst_data, **config_value)

    def logs_prefix(self, run_id: str) -> str | None:
        """`<location_root>/<env>/<repo prefix>/logs` of a run, or None (stock layout)."""
        instance = self._instance if self.has_instance else None
        segments = self._router.segments_for_run(instance, run_id)
        if not segments:
            return None
        return "/".join(p for p in (self._location_root, *segments) if p)

    def _resolve_path_for_namespace(self, namespace: Sequence[str]) -> list[str]:
        # A run's log keys are [run_id, "compute_logs", <file key>]: the namespace
        # starts with the run id.
        routed = self.logs_prefix(namespace[0]) if namespace else None
        if routed is None:
            stock: list[str] = super()._resolve_path_for_namespace(namespace)
            return stock
        return [routed, *namespace]

    @contextmanager
    def capture_logs(self, log_key: Sequence[str]) -> Generator[CapturedLogContext, None, None]:
        if log_key and self.has_instance:
            stamp_run_once(self._instance, log_key[0], self._stamped)
        with super().capture_logs(log_key) as context:
            yield context

    def delete_logs(
        self, log_key: Sequence[str] | None = None, prefix: Sequence[str] | None = None
    ) -> None:
        if log_key or not prefix:
            super().delete_logs(log_key=log_key, prefix=prefix)
            return
        self.local_manager.delete_logs(prefix=prefix)
        # the trailing '' keeps ['a'] from matching ['apple'] (as the stock manager does)
        s3_prefix = "/".join([*self._resolve_path_for_namespace(prefix), ""])
        paginator = self._s3_session.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self._s3_bucket, Prefix=s3_prefix):
            keys = [{"Key": obj["Key"]} for obj in page.get("Contents", [])]
            if keys:
                self._s3_session.delete_objects(Bucket=self._s3_bucket, Delete={"Objects": keys})

    def get_log_keys_for_log_key_prefix(
        self, log_key_prefix: Sequence[str], io_type: ComputeIOType
    ) -> Sequence[list[str]]:
        """The complete captures under a prefix (the stock method also meets the
        `.partial` uploads of running steps, whose names it cannot split)."""
        directory = "/".join([*self._resolve_path_for_namespace(log_key_prefix), ""])
        suffix = "." + IO_TYPE_EXTENSION[io_type]
        paginator = self._s3_session.get_paginator("list_objects_v2")
        found: list[list[str]] = []
        for page in paginator.paginate(Bucket=self._s3_bucket, Prefix=directory):
            for obj in page.get("Contents", []):
                name = obj["Key"][len(directory) :]
                if "/" not in name and name.endswith(suffix) and len(name) > len(suffix):
                    found.append([*log_key_prefix, name[: -len(suffix)]])
        return found
