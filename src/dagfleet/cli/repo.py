"""`dagfleet repo`: add, sync, remove, list, show, logs, suspend and resume repositories.

Every command goes through `cli.client`: the running API when it answers for
this fleet, else the fleet files through the same service, so both paths give
the same answers and the same refusals.
"""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from dagfleet.cli import output
from dagfleet.cli.client import connect
from dagfleet.cli.core import sync_repos
from dagfleet.cli.guard import BAD_INPUT, FAILED, handled
from dagfleet.cli.options import ApiOpt, EnvOpt, FleetOpt, FollowOpt, RepoArg, TailOpt, TokenOpt
from dagfleet.cli.output import JsonOpt, OutputOpt
from dagfleet.service.models import RepoResource
from dagfleet.spec.names import check_env_var_name, check_secret_file
from dagfleet.status import LocationStatus

app = typer.Typer(no_args_is_help=True)


def _bad(flag: str, item: str, problem: str) -> typer.Exit:
    shown = f"{flag} {item}" if item else flag
    output.error(f"{shown}: {problem}")
    return typer.Exit(BAD_INPUT)


def split_env_flags(items: list[str]) -> tuple[list[str], list[str]]:
    """`--env` values as (environment names, deprecated KEY=VALUE variables)."""
    names = [i for i in items if "=" not in i]
    variables = [i for i in items if "=" in i]
    if variables:
        output.warning(
            "--env KEY=VALUE is deprecated: write --var KEY=VALUE (--env names an environment)"
        )
    return names, variables


def environment(
    literals: list[tuple[str, str]], secret_envs: list[str], secret_files: list[str]
) -> list[dict[str, str]]:
    """The repo's `environment` from the flags, checked with the spec's own rules.

    `literals` are (flag, KEY=VALUE). Each error names the flag and the fix. A
    --secret-env whose variable name is invalid is never echoed: users who mistake
    the flag for KEY=SECRET would see their secret in the terminal (and in CI logs).
    """
    variables: list[dict[str, str]] = []
    seen: dict[str, str] = {}
    flags = [(flag, i, "VALUE") for flag, i in literals]
    flags += [("--secret-env", i, "ENV_VAR") for i in secret_envs]
    flags += [("--secret-file", i, "PATH") for i in secret_files]
    for flag, item, rhs in flags:
        key, sep, value = item.partition("=")
        secret = flag == "--secret-env"
        if not sep:
            raise _bad(flag, "" if secret else repr(item), f"write KEY={rhs}")
        shown = repr(f"{key}=...") if secret else repr(item)
        problem = check_env_var_name(key)
        if problem:
            raise _bad(flag, shown, problem)
        if key in seen:
            raise _bad(flag, shown, f"{key} is already set by {seen[key]}: keep one of them")
        seen[key] = flag
        if flag in ("--var", "--env"):
            variables.append({"name": key, "value": value})
        elif secret:
            if check_env_var_name(value):
                raise _bad(
                    flag,
                    shown,
                    "after '=' give the NAME of the variable in dagfleet's environment that "
                    "holds the secret ([A-Za-z_][A-Za-z0-9_]*), not the secret itself",
                )
            variables.append({"name": key, "from_env": value})
        else:
            problem = check_secret_file(value)
            if problem:
                raise _bad(flag, shown, problem)
            variables.append({"name": key, "from_file": value})
    return variables


def _monorepo_locations(url: str, branch: str | None) -> list[Any]:
    """The repository's code locations when it holds several; [] otherwise or when it
    cannot be read now (the runtime then reports what it finds)."""
    from dagfleet.discovery import DiscoveryError
    from dagfleet.gitops.errors import GitError
    from dagfleet.gitops.probe import remote_locations

    try:
        return list(remote_locations(url, branch))
    except (GitError, DiscoveryError) as exc:
        output.note(f"note: could not look into {url} for code locations: {exc}")
        return []


@app.command()
def add(
    name: Annotated[str, typer.Argument(help="Repo name (lowercase letters, digits, '-').")],
    git_url: Annotated[str, typer.Option("--git-url", help="Clone URL or local path.")],
    branch: Annotated[str | None, typer.Option(help="Branch in every environment.")] = None,
    module: Annotated[str | None, typer.Option("--module", help="Module with Definitions.")] = None,
    python_file: Annotated[str | None, typer.Option("--python-file")] = None,
    package: Annotated[str | None, typer.Option("--package")] = None,
    working_directory: Annotated[str | None, typer.Option("--working-directory")] = None,
    var: Annotated[
        list[str] | None,
        typer.Option("--var", help="KEY=VALUE, repeatable; the value is stored in the repo file."),
    ] = None,
    env: Annotated[
        list[str] | None,
        typer.Option(
            "--env",
            "-e",
            help="Run only in this environment, repeatable (as --environments). "
            "KEY=VALUE here is the deprecated spelling of --var.",
        ),
    ] = None,
    secret_env: Annotated[
        list[str] | None,
        typer.Option(
            "--secret-env",
            help="KEY=ENV_VAR, repeatable: KEY is read from dagfleet's ENV_VAR when the code "
            "server starts (from_env); only the name is stored.",
        ),
    ] = None,
    secret_file: Annotated[
        list[str] | None,
        typer.Option(
            "--secret-file",
            help="KEY=PATH, repeatable: KEY is read from the file PATH (relative to the fleet "
            "root, or absolute, e.g. /run/secrets/x) when the code server starts (from_file).",
        ),
    ] = None,
    environments: Annotated[
        str | None, typer.Option("--environments", help="Only these, e.g. A,B.")
    ] = None,
    discover: Annotated[
        bool,
        typer.Option(
            help="Look into the repository for several code locations (dg workspace "
            "projects, workspace.yaml entries) and list them in the repo file.",
        ),
    ] = True,
    wait: Annotated[bool, typer.Option(help="Wait for the locations to load.")] = True,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for loading.")] = 600.0,
    fleet: FleetOpt = None,
    api: ApiOpt = None,
    token: TokenOpt = None,
) -> None:
    """Register a repository; with a running fleet, wait until its locations load."""
    targets = [t for t in (module, python_file, package) if t]
    if len(targets) > 1:
        output.error("give at most one of --module, --python-file and --package")
        raise typer.Exit(BAD_INPUT)
    doc: dict[str, Any] = {"name": name, "git_url": git_url}
    for key, value in (
        ("branch", branch),
        ("module_name", module),
        ("python_file", python_file),
        ("package_name", package),
        ("working_directory", working_directory),
    ):
        if value is not None:
            doc[key] = value
    env_names, old_vars = split_env_flags(env or [])
    literals = [("--var", v) for v in var or []] + [("--env", v) for v in old_vars]
    variables = environment(literals, secret_env or [], secret_file or [])
    if variables:
        doc["environment"] = variables
    envs = [e.strip() for e in (environments or "").split(",") if e.strip()]
    envs += [e for e in env_names if e not in envs]
    if envs:
        doc["environments"] = envs
    with handled():
        # Connect before looking into the repository: a wrong fleet is refused at once.
        conn = connect(fleet, api, token, changes=True)
        if not targets and working_directory is None and discover:
            found = _monorepo_locations(git_url, branch)
            if found:
                doc["locations"] = [f.entry() for f in found]
                output.line(
                    f"{name} holds {len(found)} code locations: "
                    + ", ".join(f"{f.name} ({f.working_directory})" for f in found),
                    True,
                )
        created = conn.client.create_repo(doc)
        output.line(f"added {name}: locations {', '.join(created.locations) or 'none'}", True)
        remote = conn.remote
        if remote is None:
            output.line("no fleet is running: the locations start with `dagfleet up`", True)
            return
        if wait and created.locations:
            from dagfleet.cli.progress import wait_loaded

            if not wait_loaded(remote.locations, created.locations, timeout):
                raise typer.Exit(FAILED)


def sync(
    name: RepoArg,
    env: EnvOpt = None,
    fleet: FleetOpt = None,
    api: ApiOpt = None,
    token: TokenOpt = None,
    fmt: OutputOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Sync the repo now (fetch, install, load check, publish) and print what changed."""
    sync_repos([name], env, fleet, api, token, output.resolve(fmt, as_json))


app.command("sync")(sync)
# `repo update` was the first name of `repo sync`; kept so scripts keep working.
app.command("update", hidden=True)(sync)


@app.command()
def remove(
    name: RepoArg,
    purge_data: Annotated[bool, typer.Option("--purge-data", help="Also delete its data.")] = False,
    fleet: FleetOpt = None,
    api: ApiOpt = None,
    token: TokenOpt = None,
) -> None:
    """Unregister a repo: its code servers stop; its data stays unless --purge-data."""
    with handled():
        result = connect(fleet, api, token, changes=True).client.delete_repo(name, purge_data)
    output.line(f"removed {name}" + (" and its data" if result.purged else ""), True)
    for note in result.notes:
        output.note(note)


def _set_suspend(name: str, suspend: bool, fleet: Any, api: str | None, token: str | None) -> None:
    with handled():
        connect(fleet, api, token, changes=True).client.set_suspended(name, suspend)
    output.line(f"{name} {'suspended' if suspend else 'resumed'}", True)


@app.command()
def suspend(
    name: RepoArg, fleet: FleetOpt = None, api: ApiOpt = None, token: TokenOpt = None
) -> None:
    """Stop the repo's code servers but keep it registered (Flux's suspend)."""
    _set_suspend(name, True, fleet, api, token)


@app.command()
def resume(
    name: RepoArg, fleet: FleetOpt = None, api: ApiOpt = None, token: TokenOpt = None
) -> None:
    """Start a suspended repo again where it was."""
    _set_suspend(name, False, fleet, api, token)


def _branch(repo: RepoResource) -> str:
    spec = repo.spec
    if spec.branch:
        return spec.branch
    return ", ".join(f"{k}={v}" for k, v in spec.branches.items()) or "(env default)"


def _with_status(repo: RepoResource, statuses: dict[str, LocationStatus]) -> dict[str, Any]:
    doc = repo.model_dump(mode="json")
    doc["status"] = [statuses[n].model_dump(mode="json") for n in repo.locations if n in statuses]
    return doc


@app.command("list")
def list_(
    fmt: OutputOpt = None,
    as_json: JsonOpt = False,
    fleet: FleetOpt = None,
    api: ApiOpt = None,
    token: TokenOpt = None,
) -> None:
    """Every registered repo and the readiness of its locations."""
    with handled():
        connection = connect(fleet, api, token, changes=False)
        client = connection.client
        repos = client.list_repos()
        statuses = {s.location: s for s in client.locations()}

    def table(wide: bool) -> None:
        rows = [
            [
                r.name,
                r.spec.git_url,
                _branch(r),
                "yes" if r.suspended else "-",
                ", ".join(f"{n}: {output.ready_word(statuses.get(n))}" for n in r.locations) or "-",
            ]
            for r in repos
        ]
        headers = ["NAME", "GIT URL", "BRANCH", "SUSPENDED", "LOCATIONS"]
        output.print_table(headers, rows, wide, flex=["GIT URL", "LOCATIONS"])

    docs = [_with_status(r, statuses) for r in repos]
    output.emit(docs, output.resolve(fmt, as_json), table)
    if connection.fleet_dir is not None:  # files the list had to leave out: say so, exit 2
        from dagfleet.registry import Registry

        problems = Registry(connection.fleet_dir).unreadable()
        for problem in problems:
            output.error(str(problem))
        if problems:
            output.note(f"{len(problems)} problem(s): those repo files are not listed")
            raise typer.Exit(BAD_INPUT)


@app.command()
def show(
    name: RepoArg,
    fmt: OutputOpt = None,
    as_json: JsonOpt = False,
    fleet: FleetOpt = None,
    api: ApiOpt = None,
    token: TokenOpt = None,
) -> None:
    """The repo file as stored, and its locations' commits and conditions."""
    import yaml

    from dagfleet.registry import to_document

    with handled():
        client = connect(fleet, api, token, changes=False).client
        repo = client.get_repo(name)
        statuses = {s.location: s for s in client.locations()}

    def text(wide: bool) -> None:
        output.out.print(yaml.safe_dump(to_document(repo.spec), sort_keys=False).rstrip())
        output.out.print(f"etag: {repo.etag}")
        found = [statuses[n] for n in repo.locations if n in statuses]
        missing = [n for n in repo.locations if n not in statuses]
        output.status_table(found, wide, missing)

    output.emit(_with_status(repo, statuses), output.resolve(fmt, as_json), text)


@app.command()
def logs(
    name: RepoArg,
    env: EnvOpt = None,
    follow_: FollowOpt = False,
    tail: TailOpt = 100,
    fleet: FleetOpt = None,
    api: ApiOpt = None,
    token: TokenOpt = None,
) -> None:
    """Code-server output of the repo's locations."""
    from dagfleet.cli.client import follow_logs

    with handled():
        client = connect(fleet, api, token, changes=False).client
        if not follow_:
            sys.stdout.buffer.write(client.tail_logs(name, env, tail))
            sys.stdout.buffer.flush()
            return
        try:
            for chunk in follow_logs(client, name, env, tail):
                sys.stdout.buffer.write(chunk)
                sys.stdout.buffer.flush()
        except KeyboardInterrupt:
            pass
