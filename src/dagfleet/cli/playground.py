"""`dagfleet playground`: push, list and remove files of an environment's playground.

The CLI form of seed 000's `kubectl cp ... playground/` plus Reload. Through
the running API when it answers (which wakes the playground loop at once);
otherwise the files are written straight into the fleet's playground
directory, which a running loop also notices within a quarter second.
`push --watch` pushes again on every save until Ctrl-C.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.table import Table

from dagfleet import scaffold
from dagfleet.cli.repo import Api, ApiOpt, Failure, FleetOpt, TokenOpt, _api_url, run
from dagfleet.control import ControlError
from dagfleet.layout import Layout
from dagfleet.service.playground import (
    PlaygroundFiles,
    check_environment,
    check_file_name,
    check_size,
)
from dagfleet.spec import load_fleet

app = typer.Typer(no_args_is_help=True)
err = Console(stderr=True, soft_wrap=True)
out = Console()

EnvOpt = Annotated[str, typer.Option("--env", "-e", help="Environment whose playground to use.")]


class LocalPlayground:
    """No API answers: the fleet's playground directory, with the API's checks."""

    def __init__(self, fleet_dir: Path, env: str) -> None:
        check_environment(load_fleet(fleet_dir).spec, env)
        self.files = PlaygroundFiles(env, Layout.for_fleet(fleet_dir).playground(env))

    def list(self) -> dict[str, Any]:
        return self.files.list().model_dump(mode="json")

    def put(self, name: str, data: bytes) -> dict[str, Any]:
        return self.files.write(name, data).model_dump(mode="json")

    def delete(self, name: str) -> dict[str, Any]:
        return self.files.delete(name).model_dump(mode="json")


class RemotePlayground:
    def __init__(self, api: Api, env: str) -> None:
        self.api = api
        self.env = env

    def list(self) -> dict[str, Any]:
        result: dict[str, Any] = self.api.call("GET", f"/playground/{self.env}")
        return result

    def put(self, name: str, data: bytes) -> dict[str, Any]:
        result: dict[str, Any] = self.api.call(
            "PUT",
            f"/playground/{self.env}/{name}",
            content=data,
            headers={"Content-Type": "text/x-python"},
        )
        return result

    def delete(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self.api.call("DELETE", f"/playground/{self.env}/{name}")
        return result


Backend = LocalPlayground | RemotePlayground


def backend(fleet: Path | None, api: str | None, token: str | None, env: str) -> Backend:
    """The running API if it answers, else the playground directory of the fleet found."""
    fleet_dir = fleet if fleet is not None else scaffold.find_fleet_dir(Path.cwd())
    remote = Api(_api_url(api, fleet_dir), token)
    try:
        remote.http.get(remote.base + "/healthz", timeout=1.0).raise_for_status()
        return RemotePlayground(remote, env)
    except httpx.HTTPError:
        pass
    if fleet_dir is None:
        raise Failure("no fleet here and no running API: run `dagfleet up` or pass --fleet DIR", 2)
    if api:
        err.print(f"no API answers at {api}: writing into the playground of {fleet_dir}")
    return LocalPlayground(fleet_dir, env)


def _read(path: Path) -> bytes:
    """The file's bytes, after the checks the API would make (so nothing half-pushes)."""
    problem = check_file_name(path.name)
    if problem is not None:
        raise Failure(f"{path}: {problem}", 2)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise Failure(f"{path}: cannot read it: {exc.strerror}", 2) from None
    problem = check_size(path.name, size)
    if problem is not None:
        raise Failure(f"{path}: {problem}", 2)
    return path.read_bytes()


def _push(client: Backend, paths: list[Path]) -> None:
    for path in paths:
        result = client.put(path.name, _read(path))
        verb = "added" if result["created"] else "updated"
        out.print(f"{verb} {path.name} in {result['location']} ({result['file']['size']} bytes)")


def _watch(client: Backend, paths: list[Path]) -> None:
    """Push a file again each time it is saved; Ctrl-C stops."""
    from watchfiles import watch

    # Watch the directories, not the files: editors that save by renaming a
    # new file over the old one would otherwise end the watch after one save.
    wanted = {p.resolve(): p for p in paths}
    dirs = sorted({str(p.parent) for p in wanted})
    err.print(f"watching {len(paths)} file(s); Ctrl-C stops")
    try:
        for changes in watch(*dirs, watch_filter=lambda _c, f: Path(f).resolve() in wanted):
            changed = sorted({wanted[Path(f).resolve()] for _c, f in changes})
            present = [p for p in changed if p.exists()]
            try:
                _push(client, present)
            except Failure as exc:  # a bad save should not end the watch
                err.print(f"[red]error[/red] {exc}", highlight=False)
                for line in exc.problems:
                    err.print(f"[red]error[/red] {line}", highlight=False)
            except (ControlError, httpx.HTTPError) as exc:  # nor a fleet restarting
                err.print(f"[red]error[/red] {exc}; still watching", highlight=False)
    except KeyboardInterrupt:
        pass
    err.print("stopped watching")


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

    def go() -> None:
        for path in files:  # every name is checked before anything is written
            _read(path)
        client = backend(fleet, api, token, env)
        _push(client, files)
        if watch:
            _watch(client, files)

    run(go)


@app.command("list")
def list_(
    env: EnvOpt,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    fleet: FleetOpt = None,
    api: ApiOpt = None,
    token: TokenOpt = None,
) -> None:
    """The files in the environment's playground."""

    def go() -> None:
        listing = backend(fleet, api, token, env).list()
        if as_json:
            typer.echo(json.dumps(listing, indent=2))
            return
        table = Table("FILE", "BYTES", "SHA256")
        for item in listing["files"]:
            table.add_row(item["name"], str(item["size"]), item["sha256"][:12])
        out.print(f"{listing['location']}: {listing['directory']}")
        out.print(table)

    run(go)


@app.command()
def rm(
    file: Annotated[str, typer.Argument(help="File (or its name) to remove, e.g. my_assets.py.")],
    env: EnvOpt,
    fleet: FleetOpt = None,
    api: ApiOpt = None,
    token: TokenOpt = None,
) -> None:
    """Remove a file from the environment's playground."""

    def go() -> None:
        # The path given to `push` works too: only its name is used.
        name = Path(file).name
        problem = check_file_name(name)
        if problem is not None:
            raise ControlError(problem, 422)
        result = backend(fleet, api, token, env).delete(name)
        out.print(f"removed {result['name']} from {result['location']}")

    run(go)
