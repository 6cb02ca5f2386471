"""Fleet discovery walks up from any folder; completion reads names from the fleet files."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer

from dagfleet.cli import app
from dagfleet.cli.complete import complete_env, complete_location, complete_repo
from dagfleet.cli.discovery import find_fleet, resolve_fleet

pytestmark = pytest.mark.unit

FLEET_YAML = (
    "name: acme\nenvironments:\n  - {name: dev, branch: main, playground: true}\n  - {name: prod}\n"
)


def make_fleet(root: Path) -> Path:
    (root / "repos").mkdir(parents=True)
    (root / "fleet.yaml").write_text(FLEET_YAML)
    for name in ("sales", "salesforce", "ops"):
        (root / "repos" / f"{name}.yaml").write_text(f"name: {name}\ngit_url: /srv/{name}.git\n")
    return root


@pytest.mark.parametrize(
    ("files", "start", "found"),
    [
        (["fleet.yaml"], ".", "."),
        (["fleet.yaml", "repos/x.yaml"], "repos", "."),
        (["fleet.yaml"], "a/b/c", "."),
        ([".dagfleet/fleet.yaml"], ".", ".dagfleet"),
        ([".dagfleet/fleet.yaml"], "work/src", ".dagfleet"),
        ([".dagfleet/fleet.yaml"], ".dagfleet/status", ".dagfleet"),
        (["fleet.yaml", ".dagfleet/fleet.yaml"], ".", "."),
        (["fleet.yaml", "inner/fleet.yaml"], "inner/repos", "inner"),
        ([".dagfleet/status/x.json"], ".", None),
        (["repos/sales.yaml"], "repos", None),
    ],
)
def test_find_fleet_walks_up(
    tmp_path: Path, files: list[str], start: str, found: str | None
) -> None:
    root = tmp_path / "t"
    for rel in files:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("")
    (root / start).mkdir(parents=True, exist_ok=True)
    result = find_fleet(root / start)
    if found is None:
        # Nothing in the tree: whatever is above tmp_path is not this test's fleet.
        assert result is None or not str(result).startswith(str(root))
    else:
        assert result == (root / found).resolve()


def test_given_directory_wins_over_walking_up(tmp_path: Path) -> None:
    here = make_fleet(tmp_path / "here")
    there = tmp_path / "there"
    assert resolve_fleet(there, cwd=here / "repos") == there.resolve()
    assert resolve_fleet(None, cwd=here / "repos") == here.resolve()


def context(fleet: Path | None) -> typer.Context:
    ctx = typer.Context(typer.main.get_command(app))
    ctx.params["fleet"] = fleet
    return ctx


def test_completion_reads_the_fleet_files(tmp_path: Path) -> None:
    fleet = make_fleet(tmp_path / "f")
    status = fleet / ".dagfleet" / "status"
    status.mkdir(parents=True)
    (status / "old-dev.json").write_text("{}")
    ctx = context(fleet)
    assert complete_repo(ctx, "sa") == ["sales", "salesforce"]
    assert complete_repo(ctx, "") == ["ops", "sales", "salesforce"]
    assert complete_env(ctx, "") == ["dev", "prod"]
    assert complete_env(ctx, "p") == ["prod"]
    assert complete_location(ctx, "sales-") == ["sales-dev", "sales-prod"]
    assert complete_location(ctx, "") == [
        "old-dev",
        "ops-dev",
        "ops-prod",
        "playground-dev",
        "playground-prod",
        "sales-dev",
        "sales-prod",
        "salesforce-dev",
        "salesforce-prod",
    ]


def test_completion_never_fails(tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "fleet.yaml").write_text("environments: [\n")  # invalid YAML
    assert complete_env(context(broken), "") == []
    assert complete_location(context(broken), "") == []
    assert complete_repo(context(broken), "") == []  # no repos/ directory
    assert complete_repo(context(tmp_path / "missing"), "") == []
