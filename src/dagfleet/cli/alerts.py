"""`dagfleet alerts`: each alert channel's delivery health and the open alert episodes.

Exit 0 when every channel delivers; 1 when a channel is failing (its last delivery
attempt failed), so a cron job or CI step can notice alerting that went quiet.
"""

from __future__ import annotations

import typer

from dagfleet.alerts.model import AlertsReport
from dagfleet.cli import output
from dagfleet.cli.client import connect
from dagfleet.cli.guard import FAILED, handled
from dagfleet.cli.options import ApiOpt, FleetOpt, TokenOpt
from dagfleet.cli.output import JsonOpt, OutputOpt

CHANNELS = ["CHANNEL", "KIND", "UP", "QUEUED", "SENT", "FAILURES", "LAST SUCCESS", "LAST ERROR"]
EPISODES = ["OPENED", "POLICY", "EVENT", "LOCATION", "TITLE"]


def _when(iso: str | None, wide: bool) -> str:
    if not iso:
        return "-"
    return iso if wide else iso.replace("T", " ").removesuffix("+00:00")


def tables(report: AlertsReport, wide: bool) -> None:
    if not report.running:
        output.note("no fleet is running: showing the alert status it last wrote")
    if not report.channels:
        output.line("no alert channels: see docs/alerts.md (alerts.channels in fleet.yaml)")
    else:
        rows = [
            [
                c.name,
                c.kind,
                "yes" if c.up else "FAILING",
                str(c.queued),
                str(c.sent),
                str(c.failures),
                _when(c.last_success, wide),
                c.last_error or "-",
            ]
            for c in report.channels
        ]
        output.print_table(CHANNELS, rows, wide, flex=["LAST ERROR"])
    if report.episodes:
        output.line("")
        rows = [[_when(e.opened, wide), e.policy, e.event, e.location or "-", e.title]
                for e in report.episodes]  # fmt: skip
        output.print_table(EPISODES, rows, wide, flex=["TITLE"])


def alerts(
    fleet: FleetOpt = None,
    api: ApiOpt = None,
    token: TokenOpt = None,
    fmt: OutputOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Alert channels (up, queued, sent, failures, last error) and open episodes."""
    with handled():
        conn = connect(fleet, api, token, changes=False)
        report = conn.client.alerts()
    output.emit(
        report.model_dump(mode="json"),
        output.resolve(fmt, as_json),
        lambda wide: tables(report, wide),
    )
    if any(not c.up for c in report.channels):
        raise typer.Exit(FAILED)


def register(app: typer.Typer) -> None:
    app.command()(alerts)
