"""A compute log manager that files each run's step logs under its location's `logs/`.

Dagster's LocalComputeLogManager keeps every run's stdout/stderr under one
`base_dir`. dagfleet gives each location (`<repo>-<env>`) its own storage
prefix, so this manager computes the base directory per run instead:

    <storage_root>/<env>/<repo prefix>/logs/<run_id>/compute_logs/<step>.{out,err}

The repo prefix is `repos/<repo>` unless the repo file sets `s3_prefix`;
dagfleet writes every repo's prefix to `prefixes_file` (JSON), which is read
again whenever it changes, so repos added while the instance runs are routed too.

The location is read from the run record, which both the run worker (writing,
inside the location's venv) and the webserver (reading, for the UI) load from
the same instance storage, so both sides compute the same path (the routing is
`dagfleet_runtime.locations`, shared with the S3 manager of the rendered
deployments, `s3_compute_logs`). The run's
`remote_job_origin` is authoritative (runs launched from the UI or GraphQL);
runs started from the Python API have no origin and may carry the
`dagfleet/location` tag instead. Anything else stays under `base_dir`.

The run worker loads this manager for every run, so it is also where a run is
tagged with the commit it executes (`runtags.stamp_run`, see runtags).

Every path is still computed by Dagster's own `get_captured_local_path` logic
(long-name hashing, the check that a key cannot leave its base), so the UI,
subscriptions and downloads work as with the stock manager. The capture itself is
Dagster's, except that the output is mirrored back to the process's stream by a
thread (`tee`) instead of a `tail` process and a Python watcher per stream.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
from collections.abc import Generator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from dagster import Array, Field, Float, StringSource
from dagster._core.storage.compute_log_manager import CapturedLogContext, ComputeIOType
from dagster._core.storage.local_compute_log_manager import (
    IO_TYPE_EXTENSION,
    LocalComputeLogManager,
)
from dagster._serdes import ConfigurableClassData
from dagster._utils import touch_file

from dagfleet_runtime.locations import LOCATION_TAG, LocationRouter, split_location
from dagfleet_runtime.runtags import stamp_run_once
from dagfleet_runtime.tee import mirror_to_file

__all__ = ["LOCATION_TAG", "LocationComputeLogManager", "split_location"]

logger = logging.getLogger(__name__)


class LocationComputeLogManager(LocalComputeLogManager):
    """LocalComputeLogManager whose base directory is chosen per run's code location."""

    def __init__(
        self,
        base_dir: str,
        storage_root: str,
        environments: Sequence[str] | None = None,
        polling_timeout: float | None = None,
        inst_data: ConfigurableClassData | None = None,
        upload_root: str | None = None,
        upload_endpoint_url: str | None = None,
        prefixes_file: str | None = None,
    ) -> None:
        super().__init__(base_dir, polling_timeout=polling_timeout, inst_data=inst_data)
        self._storage_root = storage_root
        self._router = LocationRouter(environments or (), prefixes_file=prefixes_file)
        self._stamped: set[str] = set()  # runs this process has tagged (see runtags)
        # With an s3:// storage root the logs are captured locally (the UI reads them
        # there) and each finished capture is copied to the location's logs/ prefix.
        self._upload_root = upload_root.rstrip("/") if upload_root else None
        self._upload_endpoint = upload_endpoint_url

    @classmethod
    def config_type(cls) -> dict[str, Any]:
        return {
            "base_dir": StringSource,
            "storage_root": StringSource,
            "environments": Field(Array(str), is_required=False),
            "polling_timeout": Field(Float, is_required=False),
            "upload_root": Field(StringSource, is_required=False),
            "upload_endpoint_url": Field(StringSource, is_required=False),
            "prefixes_file": Field(StringSource, is_required=False),
        }

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData | None, config_value: Mapping[str, Any]
    ) -> LocationComputeLogManager:
        return cls(inst_data=inst_data, **config_value)

    def location_dir(self, location: str) -> str | None:
        """`<storage_root>/<env>/<repo prefix>/logs` for a location name, if it parses."""
        segments = self._router.logs_segments(location)
        return os.path.join(self._storage_root, *segments) if segments else None

    def base_dir_for(self, log_key: Sequence[str]) -> str:
        """The base directory of one log key; the first part of a run's keys is its id."""
        if not log_key:
            return self._base_dir
        instance = self._instance if self.has_instance else None
        segments = self._router.segments_for_run(instance, log_key[0])
        return os.path.join(self._storage_root, *segments) if segments else self._base_dir

    @contextmanager
    def capture_logs(self, log_key: Sequence[str]) -> Generator[CapturedLogContext, None, None]:
        """LocalComputeLogManager's capture, mirrored by a thread instead of two helper
        processes per stream (see `tee`)."""
        self._stamp(log_key)
        out = self.get_captured_local_path(log_key, IO_TYPE_EXTENSION[ComputeIOType.STDOUT])
        err = self.get_captured_local_path(log_key, IO_TYPE_EXTENSION[ComputeIOType.STDERR])
        with mirror_to_file(sys.stdout, out), mirror_to_file(sys.stderr, err):
            yield CapturedLogContext(log_key)
        # As Dagster's: the artifact says the capture is complete (not after a failure).
        touch_file(self.complete_artifact_path(log_key))  # type: ignore[no-untyped-call]
        if self._upload_root:
            self._upload(log_key)

    def _stamp(self, log_key: Sequence[str]) -> None:
        """Runs know their commit: the run worker capturing a run's logs tags the run
        with the location and commit of its own environment (see runtags)."""
        if log_key and self.has_instance:
            stamp_run_once(self._instance, log_key[0], self._stamped)

    def _upload(self, log_key: Sequence[str]) -> None:
        """Copy a finished capture to `<upload_root>/<env>/repos/<repo>/logs/...` in S3.

        A failed upload never fails the run whose logs it carries (the logs stay on
        the local disk, where the UI reads them): it is logged as a warning instead.
        """
        try:
            self._upload_capture(log_key)
        except Exception as exc:
            logger.warning(
                "dagfleet: could not upload the step logs %s to %s: %s",
                "/".join(log_key),
                self._upload_root,
                exc,
            )

    def _upload_capture(self, log_key: Sequence[str]) -> None:
        base = self.base_dir_for(log_key)
        if not base.startswith(self._storage_root.rstrip("/") + "/") or not self._upload_root:
            return
        relative = os.path.relpath(base, self._storage_root)  # <env>/repos/<repo>/logs
        bucket, _, prefix = self._upload_root.removeprefix("s3://").partition("/")
        import boto3  # installed into location envs for s3:// fleets (ImportError: a warning)

        client = boto3.client("s3", endpoint_url=self._upload_endpoint or None)
        failed: list[str] = []
        for io_type in (ComputeIOType.STDOUT, ComputeIOType.STDERR):
            path = self.get_captured_local_path(log_key, IO_TYPE_EXTENSION[io_type])
            if not os.path.exists(path):
                continue
            local = os.path.relpath(path, base)
            key = "/".join(p for p in (prefix, relative, local) if p)
            try:
                client.upload_file(path, bucket, key)
            except Exception as exc:  # try the other stream before reporting
                failed.append(f"s3://{bucket}/{key}: {exc}")
        if failed:
            raise RuntimeError("; ".join(failed))

    def get_captured_local_path(
        self, log_key: Sequence[str], extension: str, partial: bool = False
    ) -> str:
        # Dagster's own path logic, pointed at the run's base directory.
        stock = LocalComputeLogManager.__new__(LocalComputeLogManager)
        stock._base_dir = self.base_dir_for(log_key)
        path: str = LocalComputeLogManager.get_captured_local_path(
            stock, log_key, extension, partial=partial
        )
        return path

    def delete_logs(
        self, log_key: Sequence[str] | None = None, prefix: Sequence[str] | None = None
    ) -> None:
        if log_key or not prefix:
            super().delete_logs(log_key=log_key, prefix=prefix)
            return
        directory = Path(self.base_dir_for(prefix)).joinpath(*prefix)
        if directory.is_dir():
            shutil.rmtree(directory)

    def get_log_keys_for_log_key_prefix(
        self, log_key_prefix: Sequence[str], io_type: ComputeIOType
    ) -> Sequence[list[str]]:
        directory = Path(self.base_dir_for(log_key_prefix)).resolve().joinpath(*log_key_prefix)
        if not directory.is_dir():
            return []
        suffix = "." + IO_TYPE_EXTENSION[io_type]
        return [
            [*log_key_prefix, obj.stem]
            for obj in directory.iterdir()
            if obj.is_file() and obj.suffix == suffix
        ]
