"""The `dagfleet` command line: one Typer app, sub-apps per area.

Start-up stays light: FastAPI, uvicorn, Dagster, watchfiles and debugpy are
imported only inside the commands that run them (`up`, `validate`, `playground
push --watch`), so `dagfleet --help`, `status` and `repo list` start fast
(bench/cli_start.py measures it). The CLI never imports the API package: it
reaches a running fleet over HTTP through `cli.client`.
"""

from __future__ import annotations

from typing import Annotated

import typer

from dagfleet.cli import core

app = typer.Typer(
    name="dagfleet",
    help="GitOps control plane for self-hosted Dagster.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(core.dagfleet_version())
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            "-V",
            help="Print dagfleet's version and exit.",
            callback=_print_version,
            is_eager=True,
        ),
    ] = False,
) -> None:
    """GitOps control plane for self-hosted Dagster."""


core.register(app)


def _mount() -> None:
    from dagfleet.cli import debug, history, playground, render, repo

    app.add_typer(repo.app, name="repo", help="Add, sync, list and remove repositories.")
    app.add_typer(render.app, name="render", help="Render the fleet for other platforms.")
    app.add_typer(render.deploy_app, name="deploy", help="Render and deploy the fleet.")
    app.add_typer(playground.app, name="playground", help="Push files into playgrounds.")
    debug.register(app)
    from dagfleet.cli import alerts

    alerts.register(app)
    history.register(app)
    from dagfleet.cli import audit

    audit.register(app)
    from dagfleet.cli import frontdoor, users

    app.add_typer(users.app, name="user", help="Local users of the front door.")
    app.add_typer(frontdoor.app, name="frontdoor", help="The authenticating front door alone.")
    from dagfleet.cli import release

    app.add_typer(
        release.app, name="release", help="Judge commits and release them to a deploy repo."
    )


_mount()


def main() -> None:
    app()
