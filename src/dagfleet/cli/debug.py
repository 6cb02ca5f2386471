"""`dagfleet debug LOCATION`: how to attach VS Code to a location running under debugpy.

Reads the fleet and the location's status (the live debug port), and prints
the port, a `launch.json` attach configuration and, for the Kubernetes
render, the `kubectl port-forward` command with its own configuration.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import typer

from dagfleet.cli import output
from dagfleet.cli.client import ApiError, connect
from dagfleet.cli.core import load_or_exit
from dagfleet.cli.guard import BAD_INPUT, handled
from dagfleet.cli.options import ApiOpt, FleetOpt, LocationArg, TokenOpt
from dagfleet.cli.output import JsonOpt, OutputOpt
from dagfleet.control import ControlError
from dagfleet.layout import Layout
from dagfleet.spec import Fleet
from dagfleet.status import LocationStatus

err = output.err
out = output.out


def describe(fleet: Fleet, location: str, status: LocationStatus | None) -> dict[str, Any]:
    """Everything `dagfleet debug` prints, as one JSON-able document."""
    from dagfleet.debugging import (
        LOCAL_HOST,
        DebugError,
        attach_config,
        check_debuggable,
        k8s_remote_root,
        launch_json,
        local_remote_root,
        location_spec,
        port_forward,
    )

    loc = location_spec(fleet, location)
    check_debuggable(fleet, loc)
    layout = Layout.for_fleet(Path(fleet.root))
    port = status.debug_port if status is not None else None
    remote_root = local_remote_root(layout.root, loc)
    doc: dict[str, Any] = {
        "location": loc.name,
        "env": loc.env,
        "host": LOCAL_HOST,
        "port": port,
        "pid": status.pid if status is not None else None,
        "remote_root": remote_root,
        "launch_json": None,
        "note": None,
        "kubernetes": None,
    }
    if port is None and loc.playground and importlib.util.find_spec("debugpy") is None:
        # Playgrounds run in dagfleet's own environment (see reconcile.playground).
        doc["note"] = (
            f"{loc.name} runs without debugpy: install debugpy into dagfleet's environment "
            "and restart `dagfleet up`"
        )
    if port is not None:
        doc["launch_json"] = launch_json(
            attach_config(f"Attach to {loc.name} (dagfleet)", port, remote_root)
        )
    try:
        forward = port_forward(fleet, loc)
    except DebugError as exc:
        doc["kubernetes"] = {"note": str(exc)}
    else:
        doc["kubernetes"] = {
            "namespace": forward.namespace,
            "deployment": forward.deployment,
            "command": forward.command(),
            "launch_json": launch_json(
                attach_config(
                    f"Attach to {loc.name} (Kubernetes)",
                    forward.local_port,
                    k8s_remote_root(loc),
                    host="localhost",
                )
            ),
        }
    return doc


def _print(doc: dict[str, Any]) -> None:
    name = doc["location"]
    if doc["note"]:
        err.print(doc["note"], highlight=False)
    elif doc["port"] is None:
        err.print(
            f"{name} has no debug port recorded: it is not running here "
            "(start the fleet with `dagfleet up`)"
        )
    if doc["port"] is not None:
        out.print(f"{name}: debugpy listens on {doc['host']}:{doc['port']}", highlight=False)
        out.print(
            "The port alternates with its neighbour each time new code goes live; "
            "run `dagfleet debug` again after a publish.",
            highlight=False,
        )
        out.print("\n.vscode/launch.json:")
        typer.echo(json.dumps(doc["launch_json"], indent=2))
    k8s = doc["kubernetes"]
    out.print("\nKubernetes (dagfleet render k8s):")
    if "note" in k8s:
        out.print(f"  {k8s['note']}", highlight=False)
        return
    typer.echo(f"  {k8s['command']}")
    out.print("then attach with:")
    typer.echo(json.dumps(k8s["launch_json"], indent=2))


def debug(
    location: LocationArg,
    fmt: OutputOpt = None,
    as_json: JsonOpt = False,
    fleet: FleetOpt = None,
    api: ApiOpt = None,
    token: TokenOpt = None,
) -> None:
    """Print the debug port, a VS Code attach configuration and the port-forward command."""
    # Imported here: the debugging helpers pull in the renderers, which no other command needs.
    from dagfleet.debugging import DebugError

    with handled():
        conn = connect(fleet, api, token, changes=False)
        if conn.fleet_dir is None:
            output.error("dagfleet debug reads the fleet files: pass --fleet DIR or cd into it")
            raise typer.Exit(BAD_INPUT)
        loaded = load_or_exit(conn.fleet_dir, "fix them, then run `dagfleet debug` again")
        try:
            status: LocationStatus | None = conn.client.location(location)
        except (ApiError, ControlError):
            status = None  # never synced here: describe says how it would be debugged
    try:
        doc = describe(loaded, location, status)
    except DebugError as exc:
        output.error(str(exc))
        raise typer.Exit(BAD_INPUT) from None
    output.emit(doc, output.resolve(fmt, as_json), lambda _wide: _print(doc))


def register(app: typer.Typer) -> None:
    app.command(name="debug")(debug)
