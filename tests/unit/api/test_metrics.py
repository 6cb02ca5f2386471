"""Metrics text from status records."""

from __future__ import annotations

import pytest

from dagfleet.api.metrics import render
from dagfleet.status import LocationStatus

pytestmark = pytest.mark.unit


def test_metrics_from_statuses() -> None:
    good = LocationStatus(
        location="sales-A",
        repo="sales",
        env="A",
        sync_duration_seconds=1.5,
        last_successful_sync="2024-01-01T00:00:00+00:00",
        failures=2,
    ).with_condition("Serving", "True", "CodeServerRunning")
    fresh = LocationStatus(location="sales-B", repo="sales", env="B")
    text = render(lambda: [good, fresh]).decode()
    labels = 'env="A",location="sales-A",repo="sales"'
    assert f"dagfleet_location_ready{{{labels}}} 1.0" in text
    assert 'dagfleet_location_ready{env="B",location="sales-B",repo="sales"} 0.0' in text
    assert f"dagfleet_location_sync_duration_seconds{{{labels}}} 1.5" in text
    stamp = "dagfleet_location_last_successful_sync_timestamp_seconds"
    assert f"{stamp}{{{labels}}} 1.7040672e+09" in text
    assert f"dagfleet_location_sync_failures_total{{{labels}}} 2.0" in text
    assert "dagfleet_locations 2.0" in text
