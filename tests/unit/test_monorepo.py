"""One repository, several code locations: names, what each location gets, discovery."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from dagfleet.discovery import DiscoveryError, discover_locations, discover_target
from dagfleet.spec import load_fleet
from dagfleet.spec.models import RepoSpec
from dagfleet.storage.logs import prefixes_document
from tests.unit.test_spec_load import FLEET_OK, make_dir, problems_of

pytestmark = pytest.mark.unit

MONO = """\
name: mono
git_url: https://github.com/acme/mono.git
environment: [{name: SHARED, value: repo}, {name: WHO, value: repo}]
build: [dbt parse]
locations:
  - {name: ingest, working_directory: projects/ingest}
  - name: reporting
    working_directory: projects/reporting
    module_name: reporting.definitions
    environment: [{name: WHO, value: reporting}]
    build: [echo reporting]
"""


def test_each_location_is_named_repo_location_env_and_single_repos_keep_theirs(
    tmp_path: Path,
) -> None:
    plain = "name: sales\ngit_url: https://github.com/acme/sales.git\n"
    fleet = load_fleet(make_dir(tmp_path, FLEET_OK, {"mono.yaml": MONO, "sales.yaml": plain}))
    names = [(loc.name, loc.entry) for loc in fleet.locations()]
    assert names == [
        ("mono-ingest-A", "ingest"),
        ("mono-reporting-A", "reporting"),
        ("mono-ingest-B", "ingest"),
        ("mono-reporting-B", "reporting"),
        ("sales-A", None),
        ("sales-B", None),
    ]
    assert all(loc.repo == "mono" for loc in fleet.locations()[:4])


def test_a_location_adds_its_target_values_and_steps_to_the_repos(tmp_path: Path) -> None:
    repo = load_fleet(make_dir(tmp_path, FLEET_OK, {"mono.yaml": MONO})).repos["mono"]
    assert repo.target_for("ingest") == (None, "projects/ingest")
    target, where = repo.target_for("reporting")
    assert target is not None and target.module_name == "reporting.definitions"
    assert where == "projects/reporting" == target.working_directory
    assert {v.name: v.value for v in repo.environment_for("ingest")} == {
        "SHARED": "repo",
        "WHO": "repo",
    }
    assert {v.name: v.value for v in repo.environment_for("reporting")} == {
        "SHARED": "repo",
        "WHO": "reporting",
    }
    assert [s.run for s in repo.build_for("reporting")] == ["dbt parse", "echo reporting"]
    assert [s.run for s in repo.build_for("ingest")] == ["dbt parse"]


def test_location_names_that_collide_across_repos_are_refused(tmp_path: Path) -> None:
    other = "name: mono-ingest\ngit_url: https://github.com/acme/x.git\n"
    problems = problems_of(
        make_dir(tmp_path, FLEET_OK, {"mono.yaml": MONO, "mono-ingest.yaml": other})
    )
    assert any("mono-ingest-A" in p and "collides" in p for p in problems), problems


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        ({"module_name": "x.defs"}, "move them from the repo into its locations"),
        ({"working_directory": "sub"}, "move them from the repo into its locations"),
    ],
)
def test_repo_level_target_with_locations_is_refused(extra: dict[str, str], words: str) -> None:
    with pytest.raises(ValidationError, match=words):
        RepoSpec(
            name="mono",
            git_url="https://github.com/acme/mono.git",
            locations=[{"name": "a"}],
            **extra,
        )


def test_duplicate_and_too_long_location_names_are_refused() -> None:
    with pytest.raises(ValidationError, match="listed twice"):
        RepoSpec(name="m", git_url="https://x.org/m.git", locations=[{"name": "a"}, {"name": "a"}])
    with pytest.raises(ValidationError, match="together may have"):
        RepoSpec(name="m" * 30, git_url="https://x.org/m.git", locations=[{"name": "n" * 20}])


def test_compute_logs_route_monorepo_locations_to_the_repos_prefix(tmp_path: Path) -> None:
    fleet = load_fleet(make_dir(tmp_path, FLEET_OK, {"mono.yaml": MONO}))
    assert json.loads(prefixes_document(fleet)) == {
        "mono-ingest": "repos/mono",
        "mono-reporting": "repos/mono",
    }


def write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def test_a_dg_workspace_lists_its_projects(tmp_path: Path) -> None:
    tree = write(
        tmp_path,
        {
            "dg.toml": 'directory_type = "workspace"\n\n[workspace]\n\n'
            '[[workspace.projects]]\npath = "projects/ingest"\n\n'
            '[[workspace.projects]]\npath = "projects/Sales_DG"\n',
        },
    )
    found = discover_locations(tree)
    assert [f.entry() for f in found] == [
        {"name": "ingest", "working_directory": "projects/ingest"},
        {"name": "sales-dg", "working_directory": "projects/Sales_DG"},
    ]
    with pytest.raises(DiscoveryError, match=r"2 code locations \(ingest, sales-dg\)"):
        discover_target(tree)


def test_a_workspace_yaml_with_several_entries_lists_each(tmp_path: Path) -> None:
    tree = write(
        tmp_path,
        {
            "workspace.yaml": "load_from:\n"
            "  - python_module: {module_name: ingest.definitions, working_directory: ingest}\n"
            "  - python_file: {relative_path: definitions.py, working_directory: reports}\n"
            "  - python_module: {module_name: x.defs, location_name: finance}\n"
            "  - python_package: {package_name: playground, location_name: playground}\n",
        },
    )
    assert [f.entry() for f in discover_locations(tree)] == [
        {"name": "ingest", "working_directory": "ingest", "module_name": "ingest.definitions"},
        {"name": "reports", "working_directory": "reports", "python_file": "definitions.py"},
        {"name": "finance", "module_name": "x.defs"},
    ]


def test_a_single_location_is_no_monorepo(tmp_path: Path) -> None:
    tree = write(tmp_path, {"workspace.yaml": "load_from:\n  - python_module: demo.defs\n"})
    assert discover_locations(tree) == []
    assert discover_target(tree).module_name == "demo.defs"
