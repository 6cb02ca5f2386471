"""Prometheus metrics, computed at scrape time from the locations' status records.

Also the process metrics a scraper expects: dagfleet's own process (prometheus_client's
process, platform and GC collectors) and each live code server's resident memory and
CPU seconds, read with psutil from the PID its status records (the server process
itself; runs it launches are processes of their own). Dead PIDs are skipped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

import psutil
from prometheus_client import (
    CollectorRegistry,
    GCCollector,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from dagfleet.alerts.model import AlertsReport
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


class CodeServerCollector(Collector):
    """Resident memory and CPU seconds of every location's code server that is alive."""

    def __init__(self, statuses: Callable[[], list[LocationStatus]]) -> None:
        self.statuses = statuses

    def collect(self) -> Iterable[Metric]:
        memory = GaugeMetricFamily(
            "dagfleet_code_server_resident_memory_bytes",
            "Resident memory of the location's code server process",
            labels=LABELS,
        )
        cpu = CounterMetricFamily(
            "dagfleet_code_server_cpu_seconds",
            "User and system CPU time of the location's code server process",
            labels=LABELS,
        )
        for s in self.statuses():
            if s.pid is None:
                continue
            try:
                proc = psutil.Process(s.pid)
                with proc.oneshot():
                    rss = proc.memory_info().rss
                    times = proc.cpu_times()
            except psutil.Error:  # gone (or not ours to read): nothing to report
                continue
            labels = [s.location, s.repo, s.env]
            memory.add_metric(labels, float(rss))
            cpu.add_metric(labels, times.user + times.system)
        return [memory, cpu]


class AlertCollector(Collector):
    """Per alert channel: up (its last delivery worked), messages sent, failed attempts."""

    def __init__(self, report: Callable[[], AlertsReport]) -> None:
        self.report = report

    def collect(self) -> Iterable[Metric]:
        up = GaugeMetricFamily(
            "dagfleet_alert_channel_up",
            "1 unless the channel's last delivery failed",
            labels=["channel"],
        )
        sent = CounterMetricFamily(
            "dagfleet_alerts_sent", "Alert messages the channel delivered", labels=["channel"]
        )
        failed = CounterMetricFamily(
            "dagfleet_alert_delivery_failures",
            "Failed delivery attempts of the channel (each retry counts)",
            labels=["channel"],
        )
        for ch in self.report().channels:
            up.add_metric([ch.name], 1.0 if ch.up else 0.0)
            sent.add_metric([ch.name], float(ch.sent))
            failed.add_metric([ch.name], float(ch.failures))
        return [up, sent, failed]


def render(
    statuses: Callable[[], list[LocationStatus]],
    alerts: Callable[[], AlertsReport] | None = None,
) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StatusCollector(statuses))
    if alerts is not None:
        registry.register(AlertCollector(alerts))
    registry.register(CodeServerCollector(statuses))
    # A per-scrape registry, so the default one's collectors are registered here too.
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return generate_latest(registry)
