"""`dagfleet playground`: push, list and remove files of an environment's playground.

The CLI form of seed 000's `kubectl cp ... playground/` plus Reload. Through
the running API when it answers (which wakes the playground loop at once);
otherwise the files are written straight into the fleet's playground
directory, which a running loop also notices within a quarter second.
`push --watch` pushes again on every save until Ctrl-C.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dagfleet.cli import output
from dagfleet.cli.client import Client, CliFailure, connect
from dagfleet.cli.complete import complete_env
from dagfleet.cli.guard import BAD_INPUT, handled
from dagfleet.cli.options import ApiOpt, FleetOpt, TokenOpt
from dagfleet.cli.output import JsonOpt, OutputOpt
from dagfleet.service.playground import check_file_name, check_size

app = typer.Typer(no_args_is_help=True)

EnvOpt = Annotated[
    str,
    typer.Option(
        "--env", "-e", help="Environment whose playground to use.", autocompletion=complete_env
    ),
]


def _read(path: Path) -> bytes:
    """The file's bytes, after the checks the API would make (so nothing half-pushes)."""
    problem = check_file_name(path.name)
    if problem is not None:
        raise CliFailure(f"{path}: {problem}", BAD_INPUT)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise CliFailure(f"{path}: cannot read it: {exc.strerror}", BAD_INPUT) from None
    problem = check_size(path.name, size)
    if problem is not None:
        raise CliFailure(f"{path}: {problem}", BAD_INPUT)
    return path.read_bytes()


def _push(client: Client, env: str, paths: list[Path]) -> None:
    files = client.playground(env)
    for path in paths:
        result = files.write(path.name, _read(path))
        client.playground_changed(env)
        verb = "added" if result.created else "updated"
        output.line(f"{verb} {path.name} in {result.location} ({result.file.size} bytes)", True)


def _watch(client: Client, env: str, paths: list[Path]) -> None:
    """Push a file again each time it is saved; Ctrl-C stops."""
    from watchfiles import watch

    from dagfleet.cli.client import ApiError
    from dagfleet.control import ControlError

    # Watch the directories, not the files: editors that save by renaming a
    # new file over the old one would otherwise end the watch after one save.
    wanted = {p.resolve(): p for p in paths}
    dirs = sorted({str(p.parent) for p in wanted})
    output.note(f"watching {len(paths)} file(s); Ctrl-C stops")
    try:
        for changes in watch(*dirs, watch_filter=lambda _c, f: Path(f).resolve() in wanted):
            changed = sorted({wanted[Path(f).resolve()] for _c, f in changes})
            present = [p for p in changed if p.exists()]
            try:
                _push(client, env, present)
            except CliFailure as exc:  # a bad save, or a fleet restarting, ends nothing
                output.error(f"{exc}; still watching")
            except (ApiError, ControlError) as exc:
                output.error(f"{exc}; still watching")
    except KeyboardInterrupt:
        pass
    output.note("stopped watching")


@app.command()
def push(
    files: Annotated[list[Path], typer.Argument(help="Python files to copy in.", exists=False)],
    env: EnvOpt,
    watch: Annotated[bool, typer.Option("--watch", "-w", help="Push again on every save.")] = False,
    fleet: FleetOpt = None,
    api: ApiOpt = None,
    token: TokenOpt = None,
) -> None:
    """Copy files into the environment's playground; its location serves them within seconds."""
    with handled():
        for path in files:  # every name is checked before anything is written
            _read(path)
        client = connect(fleet, api, token, changes=True).client
        _push(client, env, files)
    if watch:
        _watch(client, env, files)


@app.command("list")
def list_(
    env: EnvOpt,
    fmt: OutputOpt = None,
    as_json: JsonOpt = False,
    fleet: FleetOpt = None,
    api: ApiOpt = None,
    token: TokenOpt = None,
) -> None:
    """The files in the environment's playground."""
    with handled():
        listing = connect(fleet, api, token, changes=False).client.playground(env).list()

    def table(wide: bool) -> None:
        output.line(f"{listing.location}: {listing.directory}", True)
        rows = [[f.name, str(f.size), f.sha256 if wide else f.sha256[:12]] for f in listing.files]
        output.print_table(["FILE", "BYTES", "SHA256"], rows, wide)

    output.emit(listing.model_dump(mode="json"), output.resolve(fmt, as_json), table)


@app.command()
def rm(
    file: Annotated[str, typer.Argument(help="File (or its name) to remove, e.g. my_assets.py.")],
    env: EnvOpt,
    fleet: FleetOpt = None,
    api: ApiOpt = None,
    token: TokenOpt = None,
) -> None:
    """Remove a file from the environment's playground."""
    # The path given to `push` works too: only its name is used.
    name = Path(file).name
    with handled():
        problem = check_file_name(name)
        if problem is not None:
            raise CliFailure(problem, BAD_INPUT)
        client = connect(fleet, api, token, changes=True).client
        result = client.playground(env).delete(name)
        client.playground_changed(env)
    output.line(f"removed {result.name} from {result.location}", True)
