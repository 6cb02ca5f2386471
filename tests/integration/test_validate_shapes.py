"""`dagfleet validate`, offline, reports for each common project shape what the running
fleet does with it (tests/e2e/test_project_shapes.py): the repo file holds only the
name and the git URL, and the location loads."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.support.fleetproc import DAGFLEET, dagfleet_processes, write_fleet
from tests.support.shapes import SHAPES, ShapeRepo

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.mark.parametrize("shape", list(SHAPES))
def test_validate_shape(shape: str, tmp_path: Path) -> None:
    repo = ShapeRepo(tmp_path / "remotes", shape)
    fleet_dir = write_fleet(
        tmp_path / "fleet",
        {repo.name: {"git_url": repo.url}},
        environments=[{"name": "A", "branch": "A"}],
    )
    # The env is thrown away after one load: compiling its bytecode (about 10 s on
    # 2 cores) would cost more than it saves. The user's setting wins in the builder.
    env = {**os.environ, "UV_COMPILE_BYTECODE": "0"}
    result = subprocess.run(
        [DAGFLEET, "validate", "--fleet", str(fleet_dir), "--json"],
        capture_output=True,
        text=True,
        timeout=540,
        check=False,
        env=env,
    )
    assert result.stdout.strip(), result.stderr
    (only,) = json.loads(result.stdout)
    assert only["location"] == repo.location
    assert only["commit"] == repo.tip("A")
    assert only["ok"], f"{only['reason']}: {only['message']}"
    assert only["message"].startswith("dagster 1.13."), only["message"]
    assert result.returncode == 0, result.stdout + result.stderr
    assert dagfleet_processes(fleet_dir / ".dagfleet") == []
