"""`dagfleet audit`: who launched, terminated, promoted, rolled back or changed a repository.

Read from the instance's database (works with no fleet running), newest first,
through the one client: the running API, or the fleet files. `--before ID` pages
back from the last entry shown.
"""

from __future__ import annotations

import re
from typing import Annotated

import typer

from dagfleet.audit.models import MAX_LIMIT, Action, AuditEntry
from dagfleet.cli import output
from dagfleet.cli.client import connect
from dagfleet.cli.guard import handled
from dagfleet.cli.options import ApiOpt, FleetOpt, TokenOpt
from dagfleet.cli.output import JsonOpt, OutputOpt

HEADERS = ["ID", "AT", "ACTOR", "ACTION", "OUTCOME", "WHERE", "TARGET", "DETAIL"]
WIDE = ["ID", "AT", "ACTOR", "VIA", "CLIENT", "ACTION", "OUTCOME", "LOCATION", "REPOSITORY"]
WIDE += ["ENVIRONMENT", "TARGET", "DETAIL"]
_SHA = re.compile(r"^[0-9a-f]{40}$")


def _when(iso: str, wide: bool) -> str:
    return iso if wide else iso.replace("T", " ")[:19]


def where(e: AuditEntry) -> str:
    """The location, else the repository (in its environment), else '-'."""
    if e.location:
        return e.location
    if e.repository:
        return f"{e.repository} in {e.environment}" if e.environment else e.repository
    return e.environment or "-"


def _target(target: str | None) -> str:
    """A commit as its short form; anything else (a file, a run id) whole."""
    if not target:
        return "-"
    return target[:12] if _SHA.match(target) else target


def audit_row(e: AuditEntry, wide: bool) -> list[str]:
    if not wide:
        return [
            str(e.id),
            _when(e.at, wide),
            e.actor,
            e.action,
            e.outcome,
            where(e),
            _target(e.target),
            e.detail or "",
        ]
    return [
        str(e.id),
        e.at,
        e.actor,
        e.via,
        e.client or "-",
        e.action,
        e.outcome,
        e.location or "-",
        e.repository or "-",
        e.environment or "-",
        e.target or "-",
        e.detail or "",
    ]


def audit(
    actor: Annotated[str | None, typer.Option(help="Only this actor (user or token).")] = None,
    action: Annotated[
        str | None,
        typer.Option(help="Only this action: " + ", ".join(a.value for a in Action) + "."),
    ] = None,
    location: Annotated[str | None, typer.Option(help="Only this location.")] = None,
    since: Annotated[
        str | None,
        typer.Option(help="From this time on: an age (30m, 2h, 7d, 1w), a date or an ISO time."),
    ] = None,
    limit: Annotated[
        int, typer.Option(min=1, max=MAX_LIMIT, help="At most this many entries.")
    ] = 100,
    before: Annotated[
        int | None, typer.Option(min=1, help="Only entries older than this ID (the next page).")
    ] = None,
    fleet: FleetOpt = None,
    api: ApiOpt = None,
    token: TokenOpt = None,
    fmt: OutputOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The audit log, newest first: who did what, when and where, and how it ended."""
    with handled():
        client = connect(fleet, api, token, changes=False).client
        entries = client.audit(actor, action, location, since, limit, before)

    def table(wide: bool) -> None:
        rows = [audit_row(e, wide) for e in entries]
        output.print_table(WIDE if wide else HEADERS, rows, wide, flex=["TARGET", "DETAIL"])

    output.emit([e.model_dump(mode="json") for e in entries], output.resolve(fmt, as_json), table)


def register(app: typer.Typer) -> None:
    app.command()(audit)
