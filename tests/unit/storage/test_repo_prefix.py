"""A repo's own storage prefix (`s3_prefix`, seed 004): validated, isolated, followed everywhere."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml
from dagfleet_runtime import LocationComputeLogManager

from dagfleet.render.ecs_parts import s3_prefixes
from dagfleet.spec import Fleet, FleetSpec, RepoSpec, SpecError, StorageSpec, load_fleet
from dagfleet.storage import compute_logs_config, location_env, storage_paths, write_prefixes
from dagfleet.storage.logs import PREFIXES_FILE

pytestmark = pytest.mark.unit


def _fleet(tmp_path: Path, root: str, **prefixes: str | None) -> Fleet:
    spec = FleetSpec(
        storage=StorageSpec(root=root),
        environments=[{"name": "A"}, {"name": "B"}],  # type: ignore[list-item]
    )
    repos = {
        name: RepoSpec(name=name, git_url=f"/srv/{name}.git", s3_prefix=prefix)
        for name, prefix in prefixes.items()
    }
    return Fleet(root=str(tmp_path / "fleet"), spec=spec, repos=repos)


def _write(tmp_path: Path, repos: dict[str, str | None]) -> Path:
    (tmp_path / "repos").mkdir()
    (tmp_path / "fleet.yaml").write_text("environments: [{name: A}, {name: B}]\n")
    for name, prefix in repos.items():
        doc: dict[str, str] = {"name": name, "git_url": f"/srv/{name}.git"}
        if prefix is not None:
            doc["s3_prefix"] = prefix
        (tmp_path / "repos" / f"{name}.yaml").write_text(yaml.safe_dump(doc))
    return tmp_path


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [(None, "repos/sales"), ("teams/sales", "teams/sales"), ("teams//sales/", "teams/sales")],
)
def test_the_prefix_defaults_to_repos_name(prefix: str | None, expected: str) -> None:
    assert RepoSpec(name="sales", git_url="/srv/s.git", s3_prefix=prefix).storage_prefix == expected


def test_local_and_s3_layouts_follow_the_prefix(tmp_path: Path) -> None:
    local = location_env(_fleet(tmp_path, "/d", sales="teams/sales"), "sales", "A")
    assert local["DAGFLEET_STORAGE_ROOT"] == "/d/A/teams/sales"
    assert local["DAGFLEET_LOGS"] == "/d/A/teams/sales/logs"
    assert local["DAGFLEET_SHARED"] == "/d/A/shared"
    s3 = storage_paths(_fleet(tmp_path, "s3://b/p", sales="teams/sales"), "sales", "B")
    assert s3.assets == "s3://b/p/B/teams/sales/assets"


def test_the_iam_policy_follows_the_prefix(tmp_path: Path) -> None:
    fleet = _fleet(tmp_path, "s3://lake/dagster", sales="teams/sales")
    assert s3_prefixes(fleet, "A", "sales", "x") == (
        "lake",
        "dagster/A/teams/sales",
        "dagster/A/shared",
    )


@pytest.mark.parametrize(
    ("repos", "expected"),
    [
        (
            {"sales": None, "ledger": "repos/sales/ledger"},
            "repos/ledger.yaml: s3_prefix: storage prefix 'repos/sales/ledger' overlaps "
            "repo 'sales''s 'repos/sales'",
        ),
        (
            {"sales": "teams", "hr": "teams/hr"},
            "repos/sales.yaml: s3_prefix: storage prefix 'teams' overlaps repo 'hr''s 'teams/hr'",
        ),
        (
            {"sales": "repos/hr", "hr": None},
            "repos/hr.yaml: name: storage prefix 'repos/hr' overlaps repo 'sales''s 'repos/hr'",
        ),
    ],
)
def test_overlapping_prefixes_are_refused(
    tmp_path: Path, repos: dict[str, str | None], expected: str
) -> None:
    with pytest.raises(SpecError) as err:
        load_fleet(_write(tmp_path, repos))
    assert expected in str(err.value)


@pytest.mark.parametrize(
    ("prefix", "words"),
    [
        ("shared/sales", "reserves"),
        ("temp", "reserves"),
        ("/abs", "absolute"),
        ("a/../b", "'..'"),
        ("a/./b", "'.'"),
        ("a/.hidden", "must not start with '.'"),
        ("a b", "may hold only"),
        ("", "empty"),
        ("//", "empty"),
    ],
)
def test_bad_prefixes_name_the_field(tmp_path: Path, prefix: str, words: str) -> None:
    with pytest.raises(SpecError) as err:
        load_fleet(_write(tmp_path, {"sales": prefix}))
    message = str(err.value)
    assert "repos/sales.yaml: s3_prefix:" in message and words in message


def test_distinct_prefixes_load(tmp_path: Path) -> None:
    fleet = load_fleet(_write(tmp_path, {"sales": "teams/sales", "sales2": None, "hr": "hr"}))
    assert {r.storage_prefix for r in fleet.repos.values()} == {"teams/sales", "repos/sales2", "hr"}


def test_step_logs_follow_the_prefix_file_as_it_changes(tmp_path: Path) -> None:
    fleet = _fleet(tmp_path, "data", sales="teams/sales")
    config = compute_logs_config(fleet)["config"]
    manager = LocationComputeLogManager.from_config_value(None, config)
    base = tmp_path / "fleet" / "data" / "A"
    # No prefixes file yet: the default layout.
    assert manager.location_dir("sales-A") == str(base / "repos" / "sales" / "logs")
    assert write_prefixes(fleet) is True
    assert write_prefixes(fleet) is False  # unchanged content is not rewritten
    assert manager.location_dir("sales-A") == str(base / "teams" / "sales" / "logs")
    # A repo added while the instance runs is routed without a restart.
    grown = _fleet(tmp_path, "data", sales="teams/sales", hr="people/hr")
    write_prefixes(grown)
    path = Path(config["prefixes_file"])
    os.utime(path, ns=(1, 1))  # a different stamp even within one mtime tick
    assert manager.location_dir("hr-B") == str(
        tmp_path / "fleet" / "data" / "B" / "people" / "hr" / "logs"
    )


def test_a_tampered_prefix_file_cannot_leave_the_root(tmp_path: Path) -> None:
    fleet = _fleet(tmp_path, "data", sales=None)
    config = compute_logs_config(fleet)["config"]
    path = Path(config["prefixes_file"])
    assert path.name == PREFIXES_FILE
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"sales": "../../etc", "hr": "/abs"}))
    manager = LocationComputeLogManager.from_config_value(None, config)
    root = tmp_path / "fleet" / "data" / "A"
    assert manager.location_dir("sales-A") == str(root / "repos" / "sales" / "logs")
    assert manager.location_dir("hr-A") == str(root / "repos" / "hr" / "logs")
