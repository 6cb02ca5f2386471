"""Options shared by the commands; each flag's default comes from one environment variable."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dagfleet.cli.complete import complete_env, complete_location, complete_repo

FleetOpt = Annotated[
    Path | None,
    typer.Option(
        "--fleet",
        envvar="DAGFLEET_FLEET",
        help="Fleet directory (default: the nearest fleet.yaml here or above, "
        "else .dagfleet/fleet.yaml).",
    ),
]
ApiOpt = Annotated[
    str | None,
    typer.Option(
        "--api",
        envvar="DAGFLEET_API_URL",
        help="dagfleet API URL (default: fleet.yaml's instance.api, else http://127.0.0.1:3030).",
    ),
]
TokenOpt = Annotated[
    str | None, typer.Option("--token", envvar="DAGFLEET_API_TOKEN", help="API bearer token.")
]
EnvOpt = Annotated[
    str | None,
    typer.Option("--env", "-e", help="Only this environment.", autocompletion=complete_env),
]
RepoArg = Annotated[
    str,
    typer.Argument(
        help="Repo name (lowercase letters, digits, '-').", autocompletion=complete_repo
    ),
]
OptionalRepoArg = Annotated[
    str | None, typer.Argument(help="Repo (default: all).", autocompletion=complete_repo)
]
LocationArg = Annotated[
    str,
    typer.Argument(help="Location, e.g. demo-A or playground-A.", autocompletion=complete_location),
]
FollowOpt = Annotated[bool, typer.Option("--follow", "-f", help="Keep printing.")]
TailOpt = Annotated[
    int, typer.Option(min=0, max=100_000, help="Lines from the end (as the API: 0-100000).")
]
