"""The `dagfleet` command line: one Typer app, sub-apps per area."""

from __future__ import annotations

import typer

from dagfleet.cli import core

app = typer.Typer(
    name="dagfleet",
    help="GitOps control plane for self-hosted Dagster.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
core.register(app)


def _mount_optional() -> None:
    # Sub-apps are added as their areas land; each module exposes `app`.
    from dagfleet.cli import debug, playground, render, repo

    app.add_typer(repo.app, name="repo", help="Add, change, list and remove repositories.")
    app.add_typer(render.app, name="render", help="Render the fleet for other platforms.")
    app.add_typer(render.deploy_app, name="deploy", help="Render and deploy the fleet.")
    app.add_typer(playground.app, name="playground", help="Push files into playgrounds.")
    debug.register(app)


_mount_optional()


def main() -> None:
    app()
