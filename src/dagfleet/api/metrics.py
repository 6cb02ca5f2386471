"""Prometheus metrics, computed at scrape time from the locations' status records."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from dagfleet.status import LocationStatus

LABELS = ["location", "repo", "env"]


def _timestamp(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        return None


class StatusCollector(Collector):
    """One gauge per location for readiness, sync duration and last success; failures count."""

    def __init__(self, statuses: Callable[[], list[LocationStatus]]) -> None:
        self.statuses = statuses

    def collect(self) -> Iterable[Metric]:
        ready = GaugeMetricFamily(
            "dagfleet_location_ready", "1 if the location serves a good commit", labels=LABELS
        )
        duration = GaugeMetricFamily(
            "dagfleet_location_sync_duration_seconds",
            "How long the location's last sync took",
            labels=LABELS,
        )
        last_ok = GaugeMetricFamily(
            "dagfleet_location_last_successful_sync_timestamp_seconds",
            "Unix time of the location's last successful sync",
            labels=LABELS,
        )
        failures = CounterMetricFamily(
            "dagfleet_location_sync_failures",
            "Failed syncs of the location since dagfleet started",
            labels=LABELS,
        )
        count = GaugeMetricFamily("dagfleet_locations", "Locations known to dagfleet")
        statuses = self.statuses()
        for s in statuses:
            labels = [s.location, s.repo, s.env]
            ready.add_metric(labels, 1.0 if s.ready else 0.0)
            if s.sync_duration_seconds is not None:
                duration.add_metric(labels, s.sync_duration_seconds)
            stamp = _timestamp(s.last_successful_sync)
            if stamp is not None:
                last_ok.add_metric(labels, stamp)
            failures.add_metric(labels, float(s.failures))
        count.add_metric([], float(len(statuses)))
        return [ready, duration, last_ok, failures, count]


def render(statuses: Callable[[], list[LocationStatus]]) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StatusCollector(statuses))
    return generate_latest(registry)
