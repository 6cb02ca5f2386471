"""`dagfleet history`, `rollback`, `unpin` and `logs`: what was published, going back, the logs.

History is read from the instance's database (works with no fleet running).
Rollback and unpin write the pin into the repo file and sync the environment;
they exit 1 when the location did not go live, 3 when no fleet runs to serve
it (the pin is written and served by the next `dagfleet up`).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import Annotated

import typer

from dagfleet.cli import output
from dagfleet.cli.client import Client, RemoteClient, connect
from dagfleet.cli.guard import BAD_INPUT, FAILED, NOT_RUNNING, handled
from dagfleet.cli.options import ApiOpt, FleetOpt, FollowOpt, LocationArg, TailOpt, TokenOpt
from dagfleet.cli.output import Format, JsonOpt, OutputOpt
from dagfleet.history.models import PublishAttempt
from dagfleet.service.rollback import PinResult, check_commit

HEADERS = ["STARTED", "COMMIT", "OUTCOME", "REASON", "SECONDS", "AUTHOR", "SUBJECT", "MESSAGE"]
WIDE = [*HEADERS[:2], "PREVIOUS", *HEADERS[2:], "STEPS"]


def _when(iso: str, wide: bool) -> str:
    return iso if wide else iso.replace("T", " ").removesuffix("+00:00")


def history_row(a: PublishAttempt, wide: bool) -> list[str]:
    outcome = a.outcome + (" (transient)" if a.transient else "") + (" forced" if a.forced else "")
    message = a.message or ""
    row = [
        _when(a.started, wide),
        output.short(a.commit, wide),
        outcome,
        a.reason or "-",
        f"{a.seconds:.1f}",
        a.author or "-",
        a.subject or "",
        message if wide else (message.splitlines() or [""])[0],
    ]
    if not wide:
        return row
    steps = " ".join(f"{s.step}={s.seconds:.1f}" for s in a.steps)
    return [*row[:2], output.short(a.previous, True), *row[2:], steps]


def history(
    location: LocationArg,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="At most this many attempts.")] = 20,
    fleet: FleetOpt = None,
    api: ApiOpt = None,
    token: TokenOpt = None,
    fmt: OutputOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Sync attempts of a location, newest first: commit, author, step times, outcome."""
    with handled():
        attempts = connect(fleet, api, token, changes=False).client.history(location, limit)

    def table(wide: bool) -> None:
        rows = [history_row(a, wide) for a in attempts]
        output.print_table(WIDE if wide else HEADERS, rows, wide, flex=["SUBJECT", "MESSAGE"])

    output.emit([a.model_dump(mode="json") for a in attempts], output.resolve(fmt, as_json), table)


def _report(result: PinResult, fmt: Format) -> None:
    def text(wide: bool) -> None:
        if result.pin is not None:
            how = f"was pinned to {output.short(result.previous_pin, wide)}"
            how = how if result.previous_pin else "was following its branch"
            output.line(
                f"{result.location}: pinned {result.repo} in {result.env} to "
                f"{output.short(result.pin, wide)} in {result.repo_file} ({how})",
                wide,
            )
        elif result.changed:
            output.line(
                f"{result.location}: pin {output.short(result.previous_pin, wide)} removed from "
                f"{result.repo_file}; {result.repo} in {result.env} follows its branch",
                wide,
            )
        for o in result.outcomes:
            output.line(output.outcome_line(o, wide), wide)
        for note in result.notes:
            output.note(note)

    output.emit(result.model_dump(mode="json"), fmt, text)
    if not result.running:
        raise typer.Exit(NOT_RUNNING)
    if not result.live:
        output.error(f"{', '.join(result.locations)}: not serving what was asked (see above)")
        raise typer.Exit(FAILED)


def rollback(
    location: LocationArg,
    to: Annotated[
        str | None,
        typer.Option(
            "--to", help="Commit SHA to serve (default: the one live before the current one)."
        ),
    ] = None,
    fleet: FleetOpt = None,
    api: ApiOpt = None,
    token: TokenOpt = None,
    fmt: OutputOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Serve an earlier commit now, pinned in the repo file (exit 1 if it did not go live).

    A commit that never went live in LOCATION must pass the load check first. Pins
    are per repo and environment: in a monorepo, every location of the repo in the
    environment follows it. `dagfleet unpin LOCATION` follows the branch again.
    """
    if to is not None and (problem := check_commit(to)):
        output.error(f"--to: {problem}")
        raise typer.Exit(BAD_INPUT)
    with handled():
        result = connect(fleet, api, token, changes=True).client.rollback(location, to)
    _report(result, output.resolve(fmt, as_json))


def unpin(
    location: LocationArg,
    fleet: FleetOpt = None,
    api: ApiOpt = None,
    token: TokenOpt = None,
    fmt: OutputOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Remove the pin of LOCATION's repo and environment: follow the branch again, synced now."""
    with handled():
        result = connect(fleet, api, token, changes=True).client.unpin(location)
    _report(result, output.resolve(fmt, as_json))


def _chunks(client: Client, source: str | None, lines: int) -> Iterator[bytes]:
    """The tail, then new lines as they come: from the API, or straight from the files."""
    if isinstance(client, RemoteClient):
        yield from client.follow_fleet_logs(source, lines)
        return
    import asyncio

    from dagfleet.service.fleet import FleetService
    from dagfleet.service.logs import follow

    assert isinstance(client, FleetService)
    agen = follow(client.fleet_log_paths(source), lines, 0.2, lambda: False, None)
    loop = asyncio.new_event_loop()
    try:
        while True:
            yield loop.run_until_complete(agen.__anext__())
    except StopAsyncIteration:
        return
    finally:
        loop.close()


def _follow(client: Client, source: str | None, lines: int) -> None:
    for chunk in _chunks(client, source, lines):
        sys.stdout.buffer.write(chunk)
        sys.stdout.buffer.flush()


def logs(
    name: Annotated[
        str | None,
        typer.Argument(help="webserver, daemon, dagfleet or a location (default: all of them)."),
    ] = None,
    follow_: FollowOpt = False,
    tail: TailOpt = 100,
    fleet: FleetOpt = None,
    api: ApiOpt = None,
    token: TokenOpt = None,
) -> None:
    """The fleet's logs: dagfleet's, the Dagster webserver's and daemon's, every location's."""
    with handled():
        client = connect(fleet, api, token, changes=False).client
        if not follow_:
            sys.stdout.buffer.write(client.fleet_logs(name, tail))
            sys.stdout.buffer.flush()
            return
        with contextlib.suppress(KeyboardInterrupt):
            _follow(client, name, tail)


def register(app: typer.Typer) -> None:
    app.command()(history)
    app.command()(rollback)
    app.command()(unpin)
    app.command()(logs)
