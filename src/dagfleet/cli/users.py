"""`dagfleet user add|remove|list`: the front door's local users (auth.users_file).

Passwords are read from the terminal (twice) or, with --password-stdin, from
standard input; only their scrypt hashes are written. A user needs a role in
fleet.yaml `auth.roles` too: `add` says so when none is granted.
"""

from __future__ import annotations

import getpass
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from dagfleet.cli import output
from dagfleet.cli.core import fleet_dir_or_exit, load_or_exit
from dagfleet.cli.guard import BAD_INPUT, FAILED
from dagfleet.cli.options import FleetOpt

if TYPE_CHECKING:
    from dagfleet.frontdoor.users import UsersFile

app = typer.Typer(no_args_is_help=True)
NameArg = Annotated[str, typer.Argument(help="The user name people sign in with.")]


def _users(fleet: Path | None) -> tuple[Path, UsersFile]:
    from dagfleet.frontdoor.users import UsersFile, users_path

    directory = fleet_dir_or_exit(fleet)
    spec = load_or_exit(directory, "no user was changed")
    return directory, UsersFile(users_path(Path(spec.root), spec.spec.auth.users_file))


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Password: ")
    if first != getpass.getpass("Again: "):
        output.error("the two passwords differ: nothing was changed")
        raise typer.Exit(BAD_INPUT)
    return first


@app.command()
def add(
    name: NameArg,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
    fleet: FleetOpt = None,
) -> None:
    """Add a user, or set a user's password."""
    from dagfleet.frontdoor.passwords import hash_password
    from dagfleet.frontdoor.roles import grants_for
    from dagfleet.frontdoor.users import UsersFileError, check_name
    from dagfleet.spec import load_fleet

    problem = check_name(name)
    if problem:
        output.error(problem)
        raise typer.Exit(BAD_INPUT)
    directory, users = _users(fleet)
    password = _read_password(password_stdin)
    if len(password) < 8:
        output.error("the password is shorter than 8 characters: nothing was changed")
        raise typer.Exit(BAD_INPUT)
    try:
        current = users.read()
        existed = name in current
        current[name] = hash_password(password)
        users.write(current)
    except (UsersFileError, OSError) as exc:
        output.error(str(exc))
        raise typer.Exit(FAILED) from None
    typer.echo(f"{'updated' if existed else 'added'} {name} in {users.path}")
    if not grants_for(load_fleet(directory).spec.auth, name):
        output.note(
            f"{name} holds no role yet: grant one in fleet.yaml, e.g.\n"
            f"  auth:\n    roles:\n      - {{role: admin, users: [{name}]}}"
        )


@app.command()
def remove(name: NameArg, fleet: FleetOpt = None) -> None:
    """Remove a user: they cannot sign in again, and their sessions end."""
    from dagfleet.frontdoor.users import UsersFileError

    _, users = _users(fleet)
    try:
        current = users.read()
        if name not in current:
            output.error(f"no user {name!r} in {users.path}")
            raise typer.Exit(BAD_INPUT)
        del current[name]
        users.write(current)
    except (UsersFileError, OSError) as exc:
        output.error(str(exc))
        raise typer.Exit(FAILED) from None
    typer.echo(f"removed {name}")


@app.command("list")
def list_users(fleet: FleetOpt = None) -> None:
    """The users and the roles fleet.yaml grants them."""
    from dagfleet.frontdoor.roles import grants_for
    from dagfleet.frontdoor.users import UsersFileError
    from dagfleet.spec import load_fleet

    directory, users = _users(fleet)
    try:
        names = sorted(users.read())
    except UsersFileError as exc:
        output.error(str(exc))
        raise typer.Exit(FAILED) from None
    auth = load_fleet(directory).spec.auth
    for name in names:
        held = ", ".join(g.describe() for g in grants_for(auth, name)) or "no role"
        typer.echo(f"{name}\t{held}")
