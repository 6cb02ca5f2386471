"""fleet.yaml's `instance.dagster` reaches the real Dagster instance: the dagster.yaml
dagfleet writes for a fleet with settings is loaded by `DagsterInstance.from_config`,
and run monitoring, run retries, retention and telemetry are what the user set."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from dagfleet.layout import Layout
from dagfleet.runtime.instance import dagster_yaml, write_instance
from dagfleet.spec import load_fleet

pytestmark = pytest.mark.integration

FLEET = """
name: settings
environments: [{name: A}]
instance:
  dagster:
    run_monitoring:
      enabled: true
      start_timeout_seconds: 180
      max_runtime_seconds: 3600
      poll_interval_seconds: 30
    run_retries:
      enabled: true
      max_retries: 2
      retry_on_asset_or_op_failure: false
    retention:
      schedule:
        purge_after_days: 30
      sensor:
        purge_after_days: {skipped: 3, success: 14, failure: 60, started: -1}
    telemetry:
      enabled: true
    code_servers:
      reload_timeout: 120
"""


def test_dagster_instance_takes_the_settings(tmp_path: Path) -> None:
    from dagster import DagsterInstance
    from dagster._core.definitions.run_request import InstigatorType
    from dagster._core.run_coordinator import DefaultRunCoordinator, QueuedRunCoordinator
    from dagster._core.scheduler.instigation import TickStatus

    (tmp_path / "fleet.yaml").write_text(FLEET)
    fleet = load_fleet(tmp_path)
    home = Layout.for_fleet(tmp_path).dagster_home
    write_instance(home, dagster_yaml(fleet, home, {}))
    written = yaml.safe_load((home / "dagster.yaml").read_text())
    assert written["run_retries"] == {
        "enabled": True,
        "max_retries": 2,
        "retry_on_asset_or_op_failure": False,
    }

    instance = DagsterInstance.from_config(str(home))
    try:
        assert instance.run_monitoring_enabled
        assert instance.run_monitoring_start_timeout_seconds == 180
        assert instance.run_monitoring_max_runtime_seconds == 3600
        assert instance.run_monitoring_poll_interval_seconds == 30
        assert instance.run_retries_enabled
        assert instance.run_retries_max_retries == 2
        assert not instance.run_retries_retry_on_asset_or_op_failure
        schedule = instance.get_tick_retention_settings(InstigatorType.SCHEDULE)
        assert schedule == {status: 30 for status in TickStatus}
        sensor = instance.get_tick_retention_settings(InstigatorType.SENSOR)
        assert sensor[TickStatus.SKIPPED] == 3 and sensor[TickStatus.FAILURE] == 60
        assert instance.telemetry_enabled
        assert instance.code_server_reload_timeout == 120
        # dagfleet's own parts are untouched by the user's settings.
        assert isinstance(instance.run_coordinator, DefaultRunCoordinator)
        assert not isinstance(instance.run_coordinator, QueuedRunCoordinator)
    finally:
        instance.dispose()


def test_without_settings_the_defaults_stay(tmp_path: Path) -> None:
    from dagster import DagsterInstance

    (tmp_path / "fleet.yaml").write_text("environments: [{name: A}]\n")
    fleet = load_fleet(tmp_path)
    home = Layout.for_fleet(tmp_path).dagster_home
    write_instance(home, dagster_yaml(fleet, home, {}))
    instance = DagsterInstance.from_config(str(home))
    try:
        assert not instance.run_monitoring_enabled
        assert not instance.run_retries_enabled
        assert not instance.telemetry_enabled
    finally:
        instance.dispose()
