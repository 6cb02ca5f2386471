"""`--help` of every command shows its environment variables; start-up stays light.

The import test runs each command in a fresh interpreter and lists which of the
server stack's modules got imported: none may be, for `--help`, `version`,
`status` and `repo list` (bench/cli_start.py measures the time).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from dagfleet.cli import app

pytestmark = pytest.mark.unit

HEAVY = ["fastapi", "uvicorn", "dagster", "watchfiles", "debugpy", "starlette", "dagfleet.api"]


def commands() -> list[tuple[str, ...]]:
    """Every command path, e.g. ('repo', 'add'), hidden aliases included."""
    root: Any = typer.main.get_command(app)
    found: list[tuple[str, ...]] = []

    def walk(group: Any, prefix: tuple[str, ...]) -> None:
        for name, cmd in group.commands.items():
            if hasattr(cmd, "commands"):
                walk(cmd, (*prefix, name))
            else:
                found.append((*prefix, name))

    walk(root, ())
    return found


def test_every_command_is_covered() -> None:
    names = {" ".join(c) for c in commands()}
    assert {"status", "sync", "repo add", "repo sync", "repo update", "playground push"} <= names


@pytest.mark.parametrize("path", commands(), ids=" ".join)
def test_help_shows_environment_variables(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    text = result.output
    assert "[env DAGFLEET" not in text and "[env\n" not in text
    if re.search(r"--api(?![-\w])", text):
        assert "[env var: DAGFLEET_API_URL]" in text
    if "--token" in text:
        assert "[env var: DAGFLEET_API_TOKEN]" in text
    if "--fleet" in text and path[0] not in ("render", "deploy"):
        assert "[env var: DAGFLEET_FLEET]" in text


def test_version_flags() -> None:
    for flag in ("--version", "-V"):
        result = CliRunner().invoke(app, [flag])
        assert result.exit_code == 0 and result.output.strip(), result.output
    assert CliRunner().invoke(app, ["version"]).output == CliRunner().invoke(app, ["-V"]).output


PROBE = """
import json, sys
from dagfleet.cli import app
code = 0
try:
    app(sys.argv[1:])
except SystemExit as exc:
    code = exc.code or 0
heavy = {heavy!r}
hit = [m for m in sys.modules if any(m == h or m.startswith(h + ".") for h in heavy)]
print(json.dumps([code, sorted(hit)]))
"""


@pytest.mark.parametrize(
    "args",
    [["--help"], ["version"], ["--version"], ["status"], ["repo", "list"], ["repo", "--help"]],
    ids=" ".join,
)
def test_light_commands_never_import_the_server_stack(tmp_path: Path, args: list[str]) -> None:
    fleet = tmp_path / "fleet"
    (fleet / "repos").mkdir(parents=True)
    (fleet / "fleet.yaml").write_text("name: light\nenvironments: [{name: A}]\n")
    (fleet / "repos" / "demo.yaml").write_text("name: demo\ngit_url: /srv/demo.git\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DAGFLEET_")}
    env["DAGFLEET_API_URL"] = "http://127.0.0.1:9"  # nobody answers: the files are read
    result = subprocess.run(
        [sys.executable, "-c", PROBE.format(heavy=HEAVY), *args],
        cwd=fleet,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    code, imported = json.loads(result.stdout.splitlines()[-1])
    assert code == 0, result.stdout + result.stderr  # the command ran all the way
    assert imported == [], f"{' '.join(args)} imported {imported}"


def test_the_cli_never_imports_the_api_package() -> None:
    src = Path(__file__).resolve().parents[3] / "src" / "dagfleet" / "cli"
    offenders = [
        f"{p.name}:{i}"
        for p in sorted(src.glob("*.py"))
        for i, line in enumerate(p.read_text().splitlines(), 1)
        if "dagfleet.api" in line
    ]
    assert offenders == []
