"""Statuses read without a running fleet say the fleet is stopped, not Ready."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from dagfleet.layout import Layout
from dagfleet.offline import OfflineController
from dagfleet.spec.defaults import default_fleet_document
from dagfleet.status import LocationStatus, Reason, StatusStore
from dagfleet.status.conditions import ConditionType
from dagfleet.status.liveness import FleetLock


@pytest.fixture
def fleet_dir(tmp_path: Path) -> Path:
    (tmp_path / "fleet.yaml").write_text(yaml.safe_dump(default_fleet_document()))
    (tmp_path / "repos").mkdir()
    (tmp_path / "repos" / "sales.yaml").write_text("name: sales\ngit_url: /nowhere\n")
    ready = LocationStatus(location="sales-A", repo="sales", env="A", commit="a" * 40, pid=4242)
    ready = ready.with_condition(ConditionType.SYNCED, "True", Reason.PUBLISHED)
    ready = ready.with_condition(ConditionType.SERVING, "True", Reason.CODE_SERVER_RUNNING)
    StatusStore(Layout.for_fleet(tmp_path).status).write(ready)
    return tmp_path


def test_a_fleet_that_is_not_running_is_reported_stopped(fleet_dir: Path) -> None:
    (status,) = OfflineController(fleet_dir).statuses()
    assert not status.ready
    assert status.condition("Serving").reason == Reason.FLEET_STOPPED  # type: ignore[union-attr]
    assert status.commit == "a" * 40 and status.pid is None


def test_a_running_fleet_keeps_what_it_wrote(fleet_dir: Path) -> None:
    lock = FleetLock.acquire(Layout.for_fleet(fleet_dir), fleet_dir)
    try:
        (status,) = OfflineController(fleet_dir).statuses()
        assert status.ready and status.pid == 4242
    finally:
        lock.release()
