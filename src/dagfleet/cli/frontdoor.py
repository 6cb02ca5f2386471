"""`dagfleet frontdoor serve`: the front door alone, in front of a Dagster webserver
that runs elsewhere (what the Kubernetes, compose and ECS renders run).
`dagfleet up` starts its own front door; this is for the other platforms.
"""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from dagfleet.cli import output
from dagfleet.cli.core import fleet_dir_or_exit, load_or_exit
from dagfleet.cli.guard import BAD_INPUT
from dagfleet.cli.options import FleetOpt

if TYPE_CHECKING:
    from dagfleet.audit.writer import AuditWriter
    from dagfleet.spec import Fleet

app = typer.Typer(no_args_is_help=True)


@app.command()
def serve(
    upstream: Annotated[
        str, typer.Option(help="The Dagster webserver, e.g. http://dagster-webserver:80.")
    ],
    fleet: FleetOpt = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 3000,
    users_file: Annotated[
        Path | None, typer.Option(help="Local users file (default: fleet.yaml auth.users_file).")
    ] = None,
    public_url: Annotated[
        str | None,
        typer.Option(help="How users reach it, e.g. https://dagster.example.com (Secure cookies)."),
    ] = None,
    verbose: Annotated[bool, typer.Option("-v", "--verbose")] = False,
) -> None:
    """Serve the Dagster UI behind sign-in and roles until stopped."""
    from dagfleet.control import StartRefused
    from dagfleet.frontdoor import serve as door
    from dagfleet.layout import Layout

    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    directory = fleet_dir_or_exit(fleet)
    loaded = load_or_exit(directory)
    root = Path(loaded.root)
    settings = door.DoorSettings(
        fleet_root=root,
        state_dir=Layout.for_fleet(root).root,
        host=host,
        port=port,
        upstream=upstream,
        users_file=users_file,
        public_url=public_url,
    )
    audit = _audit_writer(loaded, root)
    try:
        server = door.start(door.build(settings, door.FleetFiles(root), audit=audit), host, port)
    except StartRefused as exc:
        if audit is not None:
            audit.close()
        output.error(str(exc))
        raise typer.Exit(BAD_INPUT) from None
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    output.note(f"dagfleet front door on {server.url}, in front of {upstream}")
    try:
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()
        if audit is not None:
            audit.close()


def _audit_writer(fleet: Fleet, root: Path) -> AuditWriter | None:
    """The audit log in the instance's PostgreSQL; without one (a local SQLite file would
    sit on a read-only disk in a cluster, apart from the instance), none, said once."""
    import os

    from dagfleet.audit.store import open_store
    from dagfleet.audit.writer import AuditWriter
    from dagfleet.layout import Layout
    from dagfleet.service.identity import fleet_id

    layout = Layout.for_fleet(root)
    store = open_store(fleet.spec, layout, os.environ)
    if store.where().startswith("sqlite"):
        output.note(
            "front door: no audit log (it lives in the instance's PostgreSQL: set "
            "instance.postgres in fleet.yaml or DAGSTER_POSTGRES_*)"
        )
        return None
    ident = os.environ.get("DAGFLEET_FLEET_ID")
    if not ident:
        try:
            ident = fleet_id(layout)
        except OSError:  # a read-only fleet directory (a ConfigMap): the fleet's name
            ident = fleet.spec.name
    return AuditWriter(store, ident).start()
