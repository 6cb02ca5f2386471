"""`render ci --dagfleet-wheels`: CI installs dagfleet from the wheels `make dist` builds."""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path
from typing import Any

import yaml
from typer.testing import CliRunner

from dagfleet.cli import app
from dagfleet.render.ci import install_command
from dagfleet.render.options import CiOptions
from dagfleet.spec.defaults import default_fleet_document, medallion_repo_document

VERSION = version("dagfleet")


def fleet_dir(root: Path) -> Path:
    (root / "repos").mkdir(parents=True)
    (root / "fleet.yaml").write_text(yaml.safe_dump(default_fleet_document()))
    repo = medallion_repo_document("https://git.example.com/data/medallion.git")
    (root / "repos" / "medallion.yaml").write_text(yaml.safe_dump(repo))
    return root


def add_wheels(fleet: Path, v: str = VERSION, sub: str = "wheels") -> None:
    # Only the file names matter to the render: the install itself is run by
    # tests/integration/test_tool_install.py against real wheels.
    (fleet / sub).mkdir(parents=True, exist_ok=True)
    for name in (f"dagfleet-{v}-py3-none-any.whl", f"dagfleet_runtime-{v}-py3-none-any.whl"):
        (fleet / sub / name).write_bytes(b"")


def render(tmp_path: Path, fleet: Path, *extra: str) -> tuple[int, str, dict[str, Any]]:
    out = tmp_path / "out"
    args = ["render", "ci", "--out", str(out), "--fleet", str(fleet), *extra]
    result = CliRunner().invoke(app, args)
    path = out / ".github" / "workflows" / "dagfleet.yaml"
    doc = yaml.safe_load(path.read_text()) if path.exists() else {}
    return result.exit_code, result.output, doc


def installs(workflow: dict[str, Any]) -> list[str]:
    return [
        step["run"]
        for job in workflow["jobs"].values()
        for step in job["steps"]
        if step.get("name") == "Install dagfleet"
    ]


def test_default_install_is_unchanged() -> None:
    assert install_command(CiOptions(), "9.9.9") == "uv tool install dagfleet"
    assert install_command(CiOptions(dagfleet_source="dagfleet==1.2"), "9") == (
        "uv tool install dagfleet==1.2"
    )


def test_wheels_directory_pins_this_version_in_every_job(tmp_path: Path) -> None:
    fleet = fleet_dir(tmp_path / "fleet")
    add_wheels(fleet)
    code, output, workflow = render(tmp_path, fleet, "--dagfleet-wheels", "wheels")
    assert code == 0, output
    assert installs(workflow) == [f"uv tool install --find-links wheels dagfleet=={VERSION}"] * 2


def test_a_given_source_is_kept_and_a_url_is_not_checked(tmp_path: Path) -> None:
    fleet = fleet_dir(tmp_path / "fleet")
    url = "https://files.example.com/dagfleet wheels/"
    args = ["--dagfleet-wheels", url, "--dagfleet-source", "dagfleet==0.0.9"]
    code, output, workflow = render(tmp_path, fleet, *args)
    assert code == 0, output
    expected = "uv tool install --find-links 'https://files.example.com/dagfleet wheels/' "
    assert installs(workflow) == [expected + "dagfleet==0.0.9"] * 2


def test_wheels_of_another_version_are_refused_with_the_fix(tmp_path: Path) -> None:
    fleet = fleet_dir(tmp_path / "fleet")
    add_wheels(fleet, v="0.0.1")
    code, output, workflow = render(tmp_path, fleet, "--dagfleet-wheels", "wheels")
    assert code == 2
    assert not workflow
    assert f"dagfleet-{VERSION}-*.whl" in output
    assert f"dagfleet_runtime-{VERSION}-*.whl" in output
    assert str(fleet / "wheels") in output
    assert "make dist" in output


def test_missing_directory_and_absolute_path_are_refused(tmp_path: Path) -> None:
    fleet = fleet_dir(tmp_path / "fleet")
    code, output, _ = render(tmp_path, fleet, "--dagfleet-wheels", "dist")
    assert code == 2
    assert str(fleet / "dist") in output
    add_wheels(fleet)
    code, output, _ = render(tmp_path, fleet, "--dagfleet-wheels", str(fleet / "wheels"))
    assert code == 2
    assert "relative to it" in output
