"""The default fleet on disk: the published medallion example, `init`, and finding a fleet."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from dagfleet import scaffold
from dagfleet.spec import load_fleet
from tests.support.gitrepo import git

pytestmark = pytest.mark.integration


def tracked(bare: Path, branch: str) -> set[str]:
    return set(git("ls-tree", "-r", "--name-only", branch, cwd=bare).splitlines())


def test_publish_example_creates_a_bare_repo_with_branches_a_and_b(tmp_path: Path) -> None:
    dest = tmp_path / "remotes" / "medallion.git"
    url = scaffold.publish_example(dest)
    assert url == dest.resolve().as_uri()
    assert git("rev-parse", "--is-bare-repository", cwd=dest) == "true"
    heads = git("for-each-ref", "--format=%(refname:short)", "refs/heads", cwd=dest).split()
    assert sorted(heads) == ["A", "B"]
    assert git("rev-parse", "A", cwd=dest) == git("rev-parse", "B", cwd=dest)
    files = tracked(dest, "A")
    for expected in (
        "pyproject.toml",
        "medallion/__init__.py",
        "medallion/definitions.py",
        "medallion/dummy_data/bronze_data.csv",
    ):
        assert expected in files
    source = scaffold.example_source()
    assert (source / "medallion" / "dummy_data" / "bronze_data.csv").read_bytes() == subprocess.run(
        ["git", "show", "A:medallion/dummy_data/bronze_data.csv"],
        cwd=dest,
        capture_output=True,
        check=True,
    ).stdout
    assert not [f for f in files if "__pycache__" in f or f.startswith(".venv/")]
    assert not dest.with_name("medallion.git.tmp").exists()


def test_publish_example_is_idempotent(tmp_path: Path) -> None:
    dest = tmp_path / "medallion.git"
    first = scaffold.publish_example(dest)
    sha = git("rev-parse", "A", cwd=dest)
    assert scaffold.publish_example(dest) == first
    assert git("rev-parse", "A", cwd=dest) == sha


def test_publish_example_with_other_branches(tmp_path: Path) -> None:
    dest = tmp_path / "m.git"
    scaffold.publish_example(dest, branches=("main", "dev", "prod"))
    heads = git("for-each-ref", "--format=%(refname:short)", "refs/heads", cwd=dest).split()
    assert sorted(heads) == ["dev", "main", "prod"]


def test_init_writes_a_fleet_that_loads(tmp_path: Path) -> None:
    directory = tmp_path / "myfleet"
    assert scaffold.init_fleet(directory) == directory
    fleet = load_fleet(directory)
    assert [loc.name for loc in fleet.locations()] == [
        "medallion-A",
        "medallion-B",
        "playground-A",
        "playground-B",
    ]
    repo = fleet.repos["medallion"]
    remote = directory / ".dagfleet" / "remotes" / "medallion.git"
    assert repo.git_url == remote.resolve().as_uri()
    assert git("rev-parse", "--is-bare-repository", cwd=remote) == "true"
    assert fleet.spec.storage.root == ".dagfleet/data"
    assert fleet.environment("A").debug is True
    assert (directory / "fleet.yaml").read_text().startswith("# dagfleet fleet")


def test_init_refuses_an_existing_fleet(tmp_path: Path) -> None:
    (tmp_path / "fleet.yaml").write_text("name: mine\n")
    with pytest.raises(FileExistsError, match=r"fleet\.yaml already exists"):
        scaffold.init_fleet(tmp_path)
    assert (tmp_path / "fleet.yaml").read_text() == "name: mine\n"
    assert not (tmp_path / "repos").exists()
    assert not (tmp_path / ".dagfleet").exists()


def test_embedded_default_is_a_fleet_of_its_own(tmp_path: Path) -> None:
    state = scaffold.ensure_embedded_default(tmp_path)
    assert state == tmp_path / ".dagfleet"
    fleet = load_fleet(state)
    assert fleet.spec.storage.root == "data"
    marker = state / "fleet.yaml"
    before = marker.read_text()
    marker.write_text(before + "# edited\n")
    assert scaffold.ensure_embedded_default(tmp_path) == state
    assert marker.read_text().endswith("# edited\n"), "an existing default is kept"


@pytest.mark.parametrize(
    ("case", "files", "found"),
    [
        ("fleet.yaml here", ["fleet.yaml"], "."),
        ("embedded default", [".dagfleet/fleet.yaml"], ".dagfleet"),
        ("fleet.yaml wins over the embedded default", ["fleet.yaml", ".dagfleet/fleet.yaml"], "."),
        ("nothing", [], None),
        ("state without a fleet", [".dagfleet/status/x.json"], None),
        ("repos alone are not a fleet", ["repos/sales.yaml"], None),
    ],
)
def test_find_fleet_dir(tmp_path: Path, case: str, files: list[str], found: str | None) -> None:
    for rel in files:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("")
    result = scaffold.find_fleet_dir(tmp_path)
    assert result == (None if found is None else tmp_path / found)
