"""`dagfleet up` refuses to serve its API, or the Dagster UI, beyond loopback without
any identity configured, before starting anything."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from tests.support.fleetproc import DAGFLEET, dagfleet_processes, free_port

pytestmark = pytest.mark.integration


def test_unsafe_bind_is_refused(tmp_path: Path) -> None:
    fleet_dir = tmp_path / "fleet"
    subprocess.run([DAGFLEET, "init", str(fleet_dir)], check=True, capture_output=True)
    doc = yaml.safe_load((fleet_dir / "fleet.yaml").read_text())
    doc["instance"]["api"] = {"host": "0.0.0.0", "port": free_port()}
    (fleet_dir / "fleet.yaml").write_text(yaml.safe_dump(doc))
    result = subprocess.run(
        [DAGFLEET, "up", "--fleet", str(fleet_dir), "--port", str(free_port())],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2
    assert "DAGFLEET_API_TOKENS" in result.stderr
    assert "0.0.0.0" in result.stderr
    assert dagfleet_processes(fleet_dir / ".dagfleet") == []
    assert not (fleet_dir / ".dagfleet" / "status").exists()


def test_ui_beyond_loopback_without_sign_in_is_refused(tmp_path: Path) -> None:
    fleet_dir = tmp_path / "fleet"
    subprocess.run([DAGFLEET, "init", str(fleet_dir)], check=True, capture_output=True)
    doc = yaml.safe_load((fleet_dir / "fleet.yaml").read_text())
    doc["instance"]["webserver"] = {"host": "0.0.0.0", "port": free_port()}
    (fleet_dir / "fleet.yaml").write_text(yaml.safe_dump(doc))
    result = subprocess.run(
        [DAGFLEET, "up", "--fleet", str(fleet_dir), "--api-port", str(free_port())],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert "refusing to serve the Dagster UI on 0.0.0.0 without sign-in" in result.stderr
    assert "dagfleet user add NAME" in result.stderr and "bind to 127.0.0.1" in result.stderr
    assert dagfleet_processes(fleet_dir / ".dagfleet") == []
