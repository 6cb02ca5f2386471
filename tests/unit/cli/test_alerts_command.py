"""`dagfleet alerts` with no fleet running: the status the engine last wrote, exit 1 if a
channel was failing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dagfleet.alerts import report
from dagfleet.alerts.model import AlertsReport, ChannelStatus, EpisodeOut
from dagfleet.cli import app
from dagfleet.layout import Layout

FLEET = """\
environments: [{name: A}]
instance: {api: {port: 1}}
alerts:
  channels:
    hook: {webhook: {url: "https://x.test/in", secret: {from_env: S}}}
"""


def fleet(tmp_path: Path) -> Path:
    (tmp_path / "repos").mkdir()
    (tmp_path / "fleet.yaml").write_text(FLEET)
    return tmp_path


def test_nothing_written_yet_is_exit_0(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["alerts", "--fleet", str(fleet(tmp_path)), "-o", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "running": False,
        "updated": None,
        "channels": [],
        "episodes": [],
    }


def test_a_failing_channel_is_exit_1_and_shown(tmp_path: Path) -> None:
    root = fleet(tmp_path)
    written = AlertsReport(
        running=True,  # a fleet that died without writing its last word: shown as stopped
        channels=[
            ChannelStatus(name="hook", kind="webhook", up=False, queued=2, failures=7,
                          last_error="webhook https://x.test/in: ConnectError"),
        ],
        episodes=[
            EpisodeOut(key="p/crash_loop/demo-A", policy="p", event="crash_loop",
                       location="demo-A", opened="2027-01-01T00:00:00+00:00",
                       title="demo-A: code server crash loop"),
        ],
    )  # fmt: skip
    report.write(Layout.for_fleet(root), written)
    result = CliRunner().invoke(app, ["alerts", "--fleet", str(root), "-o", "wide"])
    assert result.exit_code == 1
    assert "FAILING" in result.stdout and "ConnectError" in result.stdout
    assert "demo-A: code server crash loop" in result.stdout
    as_json = CliRunner().invoke(app, ["alerts", "--fleet", str(root), "-o", "json"])
    assert json.loads(as_json.stdout)["running"] is False


@pytest.mark.parametrize("fmt", ["table", "yaml"])
def test_formats(tmp_path: Path, fmt: str) -> None:
    result = CliRunner().invoke(app, ["alerts", "--fleet", str(fleet(tmp_path)), "-o", fmt])
    assert result.exit_code == 0, result.output
