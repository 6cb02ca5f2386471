"""The medallion jobs against a real S3-compatible HTTP server (moto in server mode).

The server is a separate process on a free port, stopped by the fixture. The
code under test only sees DAGFLEET_STORAGE_ROOT=s3://... and the endpoint
variable dagfleet sets; credentials come from the environment as in production.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from dagster import DagsterInstance

from dagfleet.spec import Fleet, FleetSpec, StorageSpec
from dagfleet.storage import location_env
from tests.support.s3 import TEST_CREDENTIALS, client_with_bucket, moto_server

pytestmark = [pytest.mark.integration, pytest.mark.slow]

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "medallion"
BUCKET = "dagfleet-storage"


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    with moto_server() as url:
        yield url


@pytest.fixture
def s3(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> object:
    for key, value in TEST_CREDENTIALS.items():
        monkeypatch.setenv(key, value)
    return client_with_bucket(s3_endpoint, BUCKET)


@pytest.fixture(scope="module", autouse=True)
def medallion_importable() -> Iterator[None]:
    sys.path.insert(0, str(EXAMPLE))
    yield
    sys.path.remove(str(EXAMPLE))


def s3_fleet(tmp_path: Path, endpoint: str) -> Fleet:
    spec = FleetSpec(
        storage=StorageSpec(root=f"s3://{BUCKET}/fleet", endpoint_url=endpoint),
        environments=[{"name": "A"}, {"name": "B"}],  # type: ignore[list-item]
    )
    return Fleet(root=str(tmp_path), spec=spec)


def keys(client: object) -> set[str]:
    listing = client.list_objects_v2(Bucket=BUCKET)  # type: ignore[attr-defined]
    return {o["Key"] for o in listing.get("Contents", [])}


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_medallion_jobs_write_under_location_keys(
    tmp_path: Path, s3_endpoint: str, s3: object, monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    from dagster import RunConfig
    from medallion.definitions import defs

    fleet = s3_fleet(tmp_path, s3_endpoint)
    ext = "csv" if fmt == "csv" else "parquet"
    before = keys(s3)
    with DagsterInstance.ephemeral() as instance:
        for env in ("A", "B"):
            for key, value in location_env(fleet, "medallion", env).items():
                monkeypatch.setenv(key, value)
            monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)  # DAGFLEET_S3_ENDPOINT_URL alone
            io_config = {"root": {"env": "DAGFLEET_STORAGE_ROOT"}, "format": fmt}
            config = RunConfig(resources={"io_manager": {"config": io_config}})
            for name in ("bronze_to_silver_job", "silver_to_gold_job"):
                result = defs.resolve_job_def(name).execute_in_process(
                    instance=instance, run_config=config
                )
                assert result.success, name
                assert all(e.passed for e in result.get_asset_check_evaluations())
    written = keys(s3) - before
    for env in ("A", "B"):
        prefix = f"fleet/{env}/repos/medallion/"
        assert f"{prefix}silver/silver_data.{ext}" in keys(s3)
        assert f"{prefix}gold/gold_data.{ext}" in keys(s3)
        assert f"{prefix}bronze/bronze_data.csv" in keys(s3)
    assert all(
        k.startswith(("fleet/A/repos/medallion/", "fleet/B/repos/medallion/")) for k in written
    )
    if fmt == "csv":
        body = (
            s3.get_object(  # type: ignore[attr-defined]
                Bucket=BUCKET, Key="fleet/A/repos/medallion/gold/gold_data.csv"
            )["Body"]
            .read()
            .decode()
        )
        lines = body.splitlines()
        assert lines[0] == "category,order_count,total_quantity,total_price"
        assert sum(int(line.split(",")[1]) for line in lines[1:]) == 200


def test_helper_resolves_s3_keys_under_the_prefix(tmp_path: Path, s3_endpoint: str) -> None:
    from dagfleet_runtime import LocationStorage, PrefixEscapeError

    env = location_env(s3_fleet(tmp_path, s3_endpoint), "medallion", "A")
    storage = LocationStorage.from_env(env)
    assert storage.path("assets/x.csv") == f"s3://{BUCKET}/fleet/A/repos/medallion/assets/x.csv"
    assert storage.shared_path("ref.csv") == f"s3://{BUCKET}/fleet/A/shared/ref.csv"
    assert storage.endpoint_url == s3_endpoint
    for trick in ("../../B/repos/medallion/x", "/fleet/B/x", "s3://other/x", "a/../../x"):
        with pytest.raises(PrefixEscapeError):
            storage.path(trick)
