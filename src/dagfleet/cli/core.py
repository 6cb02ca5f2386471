"""Core commands: version, init, up, status, sync, validate, promote."""

from __future__ import annotations

import logging
import signal
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from dagfleet.cli import output
from dagfleet.cli.client import connect
from dagfleet.cli.discovery import resolve_fleet
from dagfleet.cli.guard import BAD_INPUT, FAILED, handled
from dagfleet.cli.options import ApiOpt, EnvOpt, FleetOpt, OptionalRepoArg, RepoArg, TokenOpt
from dagfleet.cli.output import JsonOpt, OutputOpt
from dagfleet.cli.progress import watching

if TYPE_CHECKING:
    from dagfleet.spec import Fleet

LOAD_WAIT_SECONDS = 600


def fleet_dir_or_exit(fleet: Path | None) -> Path:
    found = resolve_fleet(fleet)
    if found is None:
        output.error(
            "no fleet here: run `dagfleet up` for the default fleet or `dagfleet init DIR`, "
            "pass --fleet DIR (or set DAGFLEET_FLEET), or cd into a fleet"
        )
        raise typer.Exit(BAD_INPUT)
    return found


def load_or_exit(directory: Path, what: str = "nothing was started") -> Fleet:
    from dagfleet.spec import SpecError, load_fleet

    try:
        return load_fleet(directory)
    except SpecError as exc:
        for problem in exc.problems:
            output.error(str(problem))
        output.note(f"{len(exc.problems)} problem(s); {what}.")
        raise typer.Exit(BAD_INPUT) from None


def dagfleet_version() -> str:
    from dagfleet.service.identity import dagfleet_version as v

    return v()


def version() -> None:
    """Print dagfleet's version (also `dagfleet --version`)."""
    typer.echo(dagfleet_version())


def init(directory: Annotated[Path, typer.Argument(help="Where to write the fleet.")]) -> None:
    """Write the default fleet (medallion in A and B) as editable files."""
    from dagfleet import scaffold

    try:
        scaffold.init_fleet(directory)
    except FileExistsError as exc:
        output.error(f"{exc}: choose an empty directory")
        raise typer.Exit(BAD_INPUT) from None
    output.line(f"wrote {directory}/fleet.yaml and {directory}/repos/medallion.yaml", True)
    output.line(f"start it with: cd {directory} && dagfleet up", True)


def _announce_progress(app_: Any, directory: Path, stop: threading.Event, started: float) -> None:
    """During start-up: each location's step, then Ready or why not, until all load."""
    from dagfleet.layout import Layout
    from dagfleet.status import StatusStore

    store = StatusStore(Layout.for_fleet(directory).status)
    finished = threading.Event()
    loaded: list[bool] = []

    def wait() -> None:
        loaded.append(bool(app_.wait_ready(LOAD_WAIT_SECONDS)))
        finished.set()

    threading.Thread(target=wait, daemon=True).start()
    with watching("dagfleet: loading the locations", store.all, finals=True):
        while not finished.is_set() and not stop.is_set():
            finished.wait(0.5)
    if loaded and loaded[0]:
        output.note(f"dagfleet: all locations loaded in {time.monotonic() - started:.1f}s")
    elif loaded:
        output.note(
            f"dagfleet: not every location loaded within {LOAD_WAIT_SECONDS}s: "
            "`dagfleet status` says why"
        )


def up(
    fleet: FleetOpt = None,
    port: Annotated[
        int | None, typer.Option(help="Dagster UI port (fleet.yaml default 3000).")
    ] = None,
    api_port: Annotated[int | None, typer.Option(help="dagfleet API port (default 3030).")] = None,
    no_daemon: Annotated[
        bool, typer.Option("--no-daemon", help="Do not run dagster-daemon.")
    ] = False,
    verbose: Annotated[bool, typer.Option("-v", "--verbose")] = False,
) -> None:
    """Run the fleet: code servers, Dagster webserver and daemon, the API. Ctrl-C stops all."""
    from dagfleet import scaffold
    from dagfleet.app import FleetApp, Settings
    from dagfleet.control import StartRefused
    from dagfleet.status.liveness import FleetAlreadyRunning

    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    directory = resolve_fleet(fleet)
    if directory is None:
        output.note("no fleet.yaml here: starting the default fleet in ./.dagfleet")
        directory = scaffold.ensure_embedded_default(Path.cwd())
    load_or_exit(directory)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    app_ = FleetApp(
        Settings(fleet_dir=directory, webserver_port=port, api_port=api_port, daemon=not no_daemon)
    )
    started = time.monotonic()
    try:
        app_.start()
    except (StartRefused, FleetAlreadyRunning) as exc:
        # Undo what started before the refusal; a no-op when another `up` owns the fleet.
        app_.stop()
        output.error(str(exc))
        raise typer.Exit(BAD_INPUT) from None
    try:
        output.note(
            f"dagfleet: starting {len(app_.fleet.locations())} locations; UI at {app_.web_url} "
            f"({app_.sign_in_hint()})"
        )
        threading.Thread(
            target=_announce_progress, args=(app_, directory, stop, started), daemon=True
        ).start()
        while not stop.wait(0.5):
            pass
    finally:
        output.note("dagfleet: stopping")
        app_.stop()
        output.note("dagfleet: stopped")


def status(
    fleet: FleetOpt = None,
    api: ApiOpt = None,
    token: TokenOpt = None,
    fmt: OutputOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Every location: environment, commit, readiness, where it is served."""
    with handled():
        conn = connect(fleet, api, token, changes=False)
        if conn.remote is None and conn.fleet_dir is not None:
            load_or_exit(conn.fleet_dir, "fix them, then run `dagfleet status` again")
        statuses = conn.client.locations()
    output.emit(
        [s.model_dump(mode="json") for s in statuses],
        output.resolve(fmt, as_json),
        lambda wide: output.status_table(statuses, wide),
    )


def sync_repos(
    names: list[str] | None,
    env: str | None,
    fleet: Path | None,
    api: str | None,
    token: str | None,
    fmt: output.Format,
) -> None:
    """Sync each repo now (all when `names` is None); exit 1 if any location failed."""
    with handled():
        conn = connect(fleet, api, token, changes=True)
        client = conn.client
        repos = names if names is not None else [r.name for r in client.list_repos()]
        results = []
        remote = conn.remote
        if remote is None:  # no runtime: the service refuses with "no running fleet" (exit 3)
            results = [client.sync_repo(name, env, True) for name in repos]
        else:
            poll = remote.clone().locations
            with watching(f"syncing {', '.join(repos)}", poll):
                results = [client.sync_repo(name, env, True) for name in repos]
    output.sync_results(results, fmt, single=names is not None and len(names) == 1)
    if any(r.failed for r in results):
        raise typer.Exit(FAILED)


def sync(
    repo: OptionalRepoArg = None,
    env: EnvOpt = None,
    fleet: FleetOpt = None,
    api: ApiOpt = None,
    token: TokenOpt = None,
    fmt: OutputOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Sync now (fetch, install, load check, publish), print what changed; exit 1 on a failure."""
    sync_repos([repo] if repo else None, env, fleet, api, token, output.resolve(fmt, as_json))


def validate(
    repo: OptionalRepoArg = None,
    env: EnvOpt = None,
    fleet: FleetOpt = None,
    fmt: OutputOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Load every location's definitions in its own environment; exit 1 on any error."""
    from dagfleet.cli.progress import Progress
    from dagfleet.layout import Layout
    from dagfleet.reconcile.validate import validate_location

    loaded = load_or_exit(fleet_dir_or_exit(fleet), "nothing was validated")
    if repo is not None and repo not in loaded.repos:
        output.error(f"unknown repo {repo!r}: known repos are {', '.join(sorted(loaded.repos))}")
        raise typer.Exit(BAD_INPUT)
    envs = [e.name for e in loaded.spec.environments]
    if env is not None and env not in envs:
        output.error(f"unknown environment {env!r}: fleet.yaml defines {', '.join(envs)}")
        raise typer.Exit(BAD_INPUT)
    layout = Layout.for_fleet(Path(loaded.root))
    wanted = [
        loc
        for loc in loaded.locations()
        if not loc.playground and (not repo or loc.repo == repo) and (not env or loc.env == env)
    ]
    results = []
    with Progress(f"validating {len(wanted)} location(s)") as progress:
        for loc in wanted:
            progress.step(loc.name, "fetching, installing and loading its definitions")
            results.append(validate_location(loaded, layout, loc))

    def table(wide: bool) -> None:
        rows = [
            [r.location, output.short(r.commit, wide), "ok" if r.ok else r.reason, r.message]
            for r in results
        ]
        output.print_table(["LOCATION", "COMMIT", "RESULT", "MESSAGE"], rows, wide, ["MESSAGE"])

    output.emit([asdict(r) for r in results], output.resolve(fmt, as_json), table)
    if not all(r.ok for r in results):
        raise typer.Exit(FAILED)


def promote(
    repo: RepoArg,
    source: Annotated[str, typer.Option("--from", help="Environment whose live commit moves.")],
    target: Annotated[str, typer.Option("--to", help="Environment whose branch moves.")],
    merge: Annotated[bool, typer.Option("--merge", help="Merge when the branch diverged.")] = False,
    fleet: FleetOpt = None,
    api: ApiOpt = None,
    token: TokenOpt = None,
    fmt: OutputOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Move TARGET's branch to the commit live and Ready in SOURCE, and push it."""
    from pydantic import ValidationError

    from dagfleet.service.models import PromoteRequest

    try:
        request = PromoteRequest(repo=repo, source=source, target=target, merge=merge)
    except ValidationError as exc:
        for e in exc.errors():
            where = {"source": "--from", "target": "--to", "repo": "REPO"}.get(
                str(e["loc"][0]), str(e["loc"][0])
            )
            output.error(f"{where}: {str(e['msg']).removeprefix('Value error, ')}")
        raise typer.Exit(BAD_INPUT) from None
    with handled():
        result = connect(fleet, api, token, changes=True).client.promote(request)

    def text(wide: bool) -> None:
        how = "merged" if result.merged else "fast-forwarded"
        output.line(
            f"{result.target_branch} {how} to {output.short(result.commit, wide)} "
            f"(live in {repo}-{source}); {repo}-{target} syncs now",
            wide,
        )
        for note in result.notes:
            output.note(note)

    output.emit(asdict(result), output.resolve(fmt, as_json), text)


def register(app: typer.Typer) -> None:
    app.command()(version)
    app.command()(init)
    app.command()(up)
    app.command()(status)
    app.command()(sync)
    app.command()(validate)
    app.command()(promote)
