"""location_env, ensure_layout and compute_logs_config: what the runtime calls."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from dagfleet_runtime import LocationComputeLogManager, split_location

from dagfleet.spec import Fleet
from dagfleet.storage import compute_logs_config, ensure_layout, location_env, storage_paths

pytestmark = pytest.mark.unit

MakeFleet = Callable[..., Fleet]


def test_local_env_relative_to_fleet_root(make_fleet: MakeFleet, tmp_path: Path) -> None:
    env = location_env(make_fleet("data"), "medallion", "A")
    base = tmp_path / "fleet" / "data" / "A"
    assert env == {
        "DAGFLEET_STORAGE_ROOT": str(base / "repos" / "medallion"),
        "DAGFLEET_ASSETS": str(base / "repos" / "medallion" / "assets"),
        "DAGFLEET_RUNS": str(base / "repos" / "medallion" / "runs"),
        "DAGFLEET_LOGS": str(base / "repos" / "medallion" / "logs"),
        "DAGFLEET_SHARED": str(base / "shared"),
        "DAGFLEET_TEMP": str(base / "temp"),
    }


@pytest.mark.parametrize(
    ("root", "expected"),
    [
        ("/srv/data", "/srv/data/B/repos/r"),
        ("/srv/data/", "/srv/data/B/repos/r"),
        ("file:///srv/data", "/srv/data/B/repos/r"),
        ("s3://bucket", "s3://bucket/B/repos/r"),
        ("s3://bucket/prefix/", "s3://bucket/prefix/B/repos/r"),
    ],
)
def test_roots(make_fleet: MakeFleet, root: str, expected: str) -> None:
    assert location_env(make_fleet(root), "r", "B")["DAGFLEET_STORAGE_ROOT"] == expected


def test_s3_endpoint_only_for_s3(make_fleet: MakeFleet) -> None:
    env = location_env(make_fleet("s3://b/p", endpoint_url="http://127.0.0.1:9000"), "r", "A")
    assert env["DAGFLEET_S3_ENDPOINT_URL"] == "http://127.0.0.1:9000"
    assert env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:9000"
    assert env["DAGFLEET_SHARED"] == "s3://b/p/A/shared"
    assert "DAGFLEET_S3_ENDPOINT_URL" not in location_env(make_fleet("s3://b/p"), "r", "A")
    local = location_env(make_fleet("/d", endpoint_url="http://x"), "r", "A")
    assert "DAGFLEET_S3_ENDPOINT_URL" not in local


def test_no_credentials_in_env(make_fleet: MakeFleet) -> None:
    env = location_env(make_fleet("s3://b/p", endpoint_url="http://e"), "r", "A")
    assert not any("KEY" in k or "SECRET" in k or "TOKEN" in k for k in env)


def test_locations_and_envs_never_nest(make_fleet: MakeFleet) -> None:
    fleet = make_fleet("/d", envs=("A", "B"))
    prefixes = [storage_paths(fleet, r, e).location for r in ("x", "y", "x-A") for e in ("A", "B")]
    for a in prefixes:
        for b in prefixes:
            assert a == b or not (a + "/").startswith(b + "/")


@pytest.mark.parametrize("bad", ["", ".", "..", "a/b", "a\\b", "a\0b"])
def test_bad_names_refused(make_fleet: MakeFleet, bad: str) -> None:
    with pytest.raises(ValueError):
        storage_paths(make_fleet("/d"), bad, "A")
    with pytest.raises(ValueError):
        storage_paths(make_fleet("/d"), "r", bad)


def test_ensure_layout(make_fleet: MakeFleet, tmp_path: Path) -> None:
    fleet = make_fleet("data")
    made = ensure_layout(fleet, "medallion", "A")
    base = tmp_path / "fleet" / "data" / "A"
    for d in ("repos/medallion/assets", "repos/medallion/runs", "repos/medallion/logs"):
        assert (base / d).is_dir()
    for d in ("shared", "system", "temp"):
        assert (base / d).is_dir()
    assert len(made) == 6
    assert ensure_layout(fleet, "medallion", "A") == made  # idempotent
    assert ensure_layout(make_fleet("s3://b/p"), "medallion", "A") == []


def test_compute_logs_config_loads_the_manager(make_fleet: MakeFleet, tmp_path: Path) -> None:
    config = compute_logs_config(make_fleet("data"))
    assert config["module"] == "dagfleet_runtime.compute_logs"
    assert config["class"] == "LocationComputeLogManager"
    manager = LocationComputeLogManager.from_config_value(None, config["config"])
    assert manager.location_dir("medallion-A") == str(
        tmp_path / "fleet" / "data" / "A" / "repos" / "medallion" / "logs"
    )
    assert manager.location_dir("medallion-C") is None


def test_compute_logs_config_s3_stays_local(make_fleet: MakeFleet) -> None:
    config = compute_logs_config(make_fleet("s3://b/p"))["config"]
    assert not config["storage_root"].startswith("s3://")


@pytest.mark.parametrize(
    ("location", "envs", "expected"),
    [
        ("medallion-A", ("A", "B"), ("medallion", "A")),
        ("my-pipeline-B", ("A", "B"), ("my-pipeline", "B")),
        ("sales-eu-prod", ("prod", "eu-prod"), ("sales", "eu-prod")),
        ("playground-A", ("A",), ("playground", "A")),
        ("medallion-C", ("A", "B"), None),
        ("-A", ("A",), None),
        ("A", ("A",), None),
        ("medallion-A", (), ("medallion", "A")),
        ("nodash", (), None),
    ],
)
def test_split_location(
    location: str, envs: tuple[str, ...], expected: tuple[str, str] | None
) -> None:
    assert split_location(location, envs) == expected
