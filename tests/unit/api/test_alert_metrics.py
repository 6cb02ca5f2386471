"""The alert channels' metrics: up, sent and failures per channel."""

from __future__ import annotations

from dagfleet.alerts.model import AlertsReport, ChannelStatus
from dagfleet.api.metrics import render


def test_alert_channel_metrics() -> None:
    report = AlertsReport(
        running=True,
        channels=[
            ChannelStatus(name="slack", kind="slack_webhook", up=True, sent=3),
            ChannelStatus(name="hook", kind="webhook", up=False, sent=1, failures=4),
        ],
    )
    text = render(lambda: [], lambda: report).decode()
    assert 'dagfleet_alert_channel_up{channel="slack"} 1.0' in text
    assert 'dagfleet_alert_channel_up{channel="hook"} 0.0' in text
    assert 'dagfleet_alerts_sent_total{channel="slack"} 3.0' in text
    assert 'dagfleet_alert_delivery_failures_total{channel="hook"} 4.0' in text


def test_no_alerts_no_alert_metrics() -> None:
    assert b"dagfleet_alert" not in render(lambda: [])
