"""`.dagfleet/alerts.json`: the alert engine's last word on channels and open episodes.

The engine of a running fleet rewrites it when something changes; `FleetService`
reads it for the API, the CLI and the metrics (offline too: then `running` is
False and it shows how things stood when the fleet stopped).
"""

from __future__ import annotations

from dagfleet.alerts.model import AlertsReport
from dagfleet.fsutil import atomic_write
from dagfleet.layout import Layout
from dagfleet.status.liveness import fleet_running

FILE = "alerts.json"


def write(layout: Layout, report: AlertsReport) -> None:
    atomic_write(layout.root / FILE, report.model_dump_json(indent=2))


def read(layout: Layout) -> AlertsReport:
    """The last report (or an empty one); `running` only while the fleet runs."""
    try:
        report = AlertsReport.model_validate_json((layout.root / FILE).read_bytes())
    except (OSError, ValueError):
        report = AlertsReport(running=False)
    if report.running and not fleet_running(layout):
        report = report.model_copy(update={"running": False})
    return report
