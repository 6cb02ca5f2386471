"""`dagfleet validate`, offline, reports for each common project shape what the running
fleet does with it (tests/e2e/test_project_shapes.py): the repo file holds only the
name and the git URL, and the location loads.

One fleet holds every shape, as a team's fleet would, and one `dagfleet validate`
run checks them all: shapes with the same dependencies share one environment, as
they do in a running fleet. Each shape is still its own test, so a failure names it.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.support.fleetproc import DAGFLEET, dagfleet_processes, write_fleet
from tests.support.shapes import SHAPES, ShapeRepo

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def validated(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[dict[str, ShapeRepo], dict[str, Any], subprocess.CompletedProcess[str], Path]:
    base = tmp_path_factory.mktemp("validate-shapes")
    repos = {shape: ShapeRepo(base / "remotes", shape) for shape in SHAPES}
    fleet_dir = write_fleet(
        base / "fleet",
        {repo.name: {"git_url": repo.url} for repo in repos.values()},
        environments=[{"name": "A", "branch": "A"}],
    )
    # The envs are thrown away after one load: compiling their bytecode (about 10 s
    # each on 2 cores) would cost more than it saves. The user's setting wins.
    env = {**os.environ, "UV_COMPILE_BYTECODE": "0"}
    result = subprocess.run(
        [DAGFLEET, "validate", "--fleet", str(fleet_dir), "--json"],
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
        env=env,
    )
    assert result.stdout.strip(), result.stderr
    by_location = {item["location"]: item for item in json.loads(result.stdout)}
    return repos, by_location, result, fleet_dir


@pytest.mark.parametrize("shape", list(SHAPES))
def test_validate_shape(
    shape: str,
    validated: tuple[dict[str, ShapeRepo], dict[str, Any], subprocess.CompletedProcess[str], Path],
) -> None:
    repos, by_location, _, _ = validated
    repo = repos[shape]
    only = by_location[repo.location]
    assert only["commit"] == repo.tip("A")
    assert only["ok"], f"{only['reason']}: {only['message']}"
    assert only["message"].startswith("dagster 1.13."), only["message"]


def test_validate_succeeds_and_leaves_nothing_running(
    validated: tuple[dict[str, ShapeRepo], dict[str, Any], subprocess.CompletedProcess[str], Path],
) -> None:
    repos, by_location, result, fleet_dir = validated
    assert sorted(by_location) == sorted(r.location for r in repos.values())
    assert result.returncode == 0, result.stdout + result.stderr
    assert dagfleet_processes(fleet_dir / ".dagfleet") == []
