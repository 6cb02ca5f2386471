"""`dagfleet validate` loads every location's definitions and reports per location."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.support.fleetproc import DAGFLEET, dagfleet_processes, write_fleet
from tests.support.gitrepo import CodeRepo

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_validate_reports_each_location(tmp_path: Path) -> None:
    good = CodeRepo(tmp_path / "good")
    bad = CodeRepo(tmp_path / "bad")
    bad.commit(
        {"demo/definitions.py": "from dagster import Definitions\ndefs = Definitions(\n"}, "x"
    )
    bad.push("A")
    fleet_dir = write_fleet(
        tmp_path / "fleet",
        {
            "good": {"git_url": good.url, "module_name": "demo.definitions"},
            "bad": {"git_url": bad.url, "module_name": "demo.definitions"},
        },
    )
    result = subprocess.run(
        [DAGFLEET, "validate", "--fleet", str(fleet_dir), "--json"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    by_name = {r["location"]: r for r in json.loads(result.stdout)}
    assert set(by_name) == {"good-A", "good-B", "bad-A", "bad-B"}
    assert by_name["good-A"]["ok"] and by_name["good-B"]["ok"] and by_name["bad-B"]["ok"]
    assert not by_name["bad-A"]["ok"]
    assert by_name["bad-A"]["reason"] == "DefinitionsInvalid"
    assert "SyntaxError" in by_name["bad-A"]["message"]
    assert by_name["bad-A"]["commit"] == bad.tip("A")
    assert dagfleet_processes(fleet_dir / ".dagfleet") == []

    only_good = subprocess.run(
        [DAGFLEET, "validate", "good", "--fleet", str(fleet_dir)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert only_good.returncode == 0, only_good.stdout + only_good.stderr
    assert "good-A" in only_good.stdout and "bad-A" not in only_good.stdout
