"""Step stdout/stderr of an s3:// fleet reach the location's logs/ prefix in the bucket.

A real Dagster run on an instance configured by `compute_logs_config` (the
dagster.yaml section `dagfleet up` writes) against a real S3-compatible HTTP
server (moto in server mode, its own process): the finished capture is copied
to `<root>/<env>/<repo prefix>/logs/<run_id>/compute_logs/`, and a failing
upload is reported as a warning without failing the run. The rendered instances'
S3 manager (dagfleet_runtime.s3_compute_logs) reads the same keys back.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dagster import DagsterInstance, execute_job, in_process_executor, job, op, reconstructable

from dagfleet.spec import Fleet, FleetSpec, RepoSpec, StorageSpec
from dagfleet.storage import write_prefixes
from tests.support.instance import instance_with_compute_logs
from tests.support.s3 import TEST_CREDENTIALS, client_with_bucket, moto_server

pytestmark = [pytest.mark.integration, pytest.mark.slow]

BUCKET = "dagfleet-logs"
STDOUT_MARK = "stdout from a dagfleet step on s3"
STDERR_MARK = "stderr from a dagfleet step on s3"


@op
def talk() -> None:
    import sys

    print(STDOUT_MARK, flush=True)
    print(STDERR_MARK, file=sys.stderr, flush=True)


@job(executor_def=in_process_executor)
def talking_job() -> None:
    talk()


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    with moto_server() as url:
        yield url


@pytest.fixture
def s3(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    for key, value in TEST_CREDENTIALS.items():
        monkeypatch.setenv(key, value)
    return client_with_bucket(s3_endpoint, BUCKET)


def s3_fleet(tmp_path: Path, endpoint: str, bucket: str = BUCKET, **repos: RepoSpec) -> Fleet:
    spec = FleetSpec(
        storage=StorageSpec(root=f"s3://{bucket}/fleet", endpoint_url=endpoint),
        environments=[{"name": "A"}, {"name": "B"}],  # type: ignore[list-item]
    )
    return Fleet(root=str(tmp_path / "fleet"), spec=spec, repos=repos)


def run_as(instance: DagsterInstance, location: str) -> str:
    result = execute_job(
        reconstructable(talking_job), instance=instance, tags={"dagfleet/location": location}
    )
    assert result.success
    return result.run_id


def objects(client: Any, prefix: str) -> dict[str, str]:
    listing = client.list_objects_v2(Bucket=BUCKET, Prefix=prefix)
    return {
        o["Key"]: client.get_object(Bucket=BUCKET, Key=o["Key"])["Body"].read().decode()
        for o in listing.get("Contents", [])
    }


def test_step_stdout_is_uploaded_under_the_locations_logs(
    tmp_path: Path, s3_endpoint: str, s3: Any
) -> None:
    fleet = s3_fleet(
        tmp_path,
        s3_endpoint,
        medallion=RepoSpec(name="medallion", git_url="/m"),
        sales=RepoSpec(name="sales", git_url="/s", s3_prefix="t/sales"),
    )
    write_prefixes(fleet)
    with instance_with_compute_logs(tmp_path / "home", fleet) as instance:
        run_a = run_as(instance, "medallion-A")
        run_b = run_as(instance, "sales-B")  # the repo's s3_prefix moves its logs/ too
        expected = {run_a: "fleet/A/repos/medallion/logs/", run_b: "fleet/B/t/sales/logs/"}
        everything = objects(s3, "fleet/")
        for run_id, logs in expected.items():
            mine = {k: v for k, v in everything.items() if run_id in k}
            assert all(k.startswith(f"{logs}{run_id}/compute_logs/") for k in mine), sorted(mine)
            outs = [key for key in mine if key.endswith(".out")]
            errs = [key for key in mine if key.endswith(".err")]
            assert len(outs) == 1 and STDOUT_MARK in mine[outs[0]], sorted(mine)
            assert len(errs) == 1 and STDERR_MARK in mine[errs[0]], sorted(mine)
            # The UI keeps reading the local copy through the same manager.
            log_key = [run_id, "compute_logs", Path(outs[0]).stem]
            data = instance.compute_log_manager.get_log_data(log_key)
            assert data.stdout is not None and STDOUT_MARK.encode() in data.stdout
        assert not [k for k in everything if k.startswith(("fleet/B/repos/", "fleet/A/t/"))]


def test_a_failed_upload_is_a_warning_not_a_failed_run(
    tmp_path: Path, s3_endpoint: str, s3: Any, caplog: pytest.LogCaptureFixture
) -> None:
    fleet = s3_fleet(tmp_path, s3_endpoint, bucket="no-such-bucket")
    write_prefixes(fleet)
    with (
        caplog.at_level(logging.WARNING, logger="dagfleet_runtime.compute_logs"),
        instance_with_compute_logs(tmp_path / "home", fleet) as instance,
    ):
        run_id = run_as(instance, "medallion-A")
    warnings = [
        r.getMessage()
        for r in caplog.records
        if r.name == "dagfleet_runtime.compute_logs" and r.levelno == logging.WARNING
    ]
    assert len(warnings) == 1, warnings
    assert run_id in warnings[0]
    assert "s3://no-such-bucket/fleet/A/repos/medallion/logs/" in warnings[0]


def test_the_rendered_s3_manager_reads_what_dagfleet_up_uploaded(
    tmp_path: Path, s3_endpoint: str, s3: Any
) -> None:
    """One layout for both: the logs `dagfleet up` copies to a location's logs/ are read
    back by the rendered instances' LocationS3ComputeLogManager (a cluster's webserver
    over the same bucket), from S3 alone."""
    from dagfleet_runtime.s3_compute_logs import LocationS3ComputeLogManager

    fleet = s3_fleet(
        tmp_path, s3_endpoint, sales=RepoSpec(name="sales", git_url="/s", s3_prefix="t/sales")
    )
    write_prefixes(fleet)
    with instance_with_compute_logs(tmp_path / "home", fleet) as instance:
        run_id = run_as(instance, "sales-B")
        stored = [k for k in objects(s3, f"fleet/B/t/sales/logs/{run_id}/") if k.endswith(".out")]
        assert len(stored) == 1, stored
        log_key = [run_id, "compute_logs", Path(stored[0]).stem]
        reader = LocationS3ComputeLogManager(
            bucket=BUCKET,
            local_dir=str(tmp_path / "webserver"),
            prefix="fleet/_system/compute_logs",
            location_root="fleet",
            environments=["A", "B"],
            repo_prefixes={"sales": "t/sales"},
            endpoint_url=s3_endpoint,
        )
        reader.register_instance(instance)
        data = reader.get_log_data(log_key)
        assert data.stdout is not None and STDOUT_MARK.encode() in data.stdout
        assert data.stderr is not None and STDERR_MARK.encode() in data.stderr
        reader.dispose()
