"""Core commands: init, up, status, sync, promote."""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.table import Table

from dagfleet import scaffold
from dagfleet.spec import SpecError, load_fleet
from dagfleet.status import LocationStatus, StatusStore

# soft_wrap: a problem stays on one line when stderr is a CI log, not a terminal.
err = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)

FleetOpt = Annotated[
    Path | None,
    typer.Option("--fleet", help="Fleet directory (default: ./fleet.yaml, else ./.dagfleet)."),
]


def fleet_dir_or_exit(fleet: Path | None) -> Path:
    found = fleet if fleet is not None else scaffold.find_fleet_dir(Path.cwd())
    if found is None:
        err.print("no fleet here: run `dagfleet up` for the default fleet or `dagfleet init DIR`")
        raise typer.Exit(2)
    return found


def load_or_exit(directory: Path) -> Any:
    try:
        return load_fleet(directory)
    except SpecError as exc:
        for problem in exc.problems:
            err.print(f"[red]error[/red] {problem}", highlight=False)
        err.print(f"{len(exc.problems)} problem(s); nothing was started.")
        raise typer.Exit(2) from None


def api_url(directory: Path, given: str | None) -> str:
    if given:
        return given.rstrip("/")
    if os.environ.get("DAGFLEET_API_URL"):
        return os.environ["DAGFLEET_API_URL"].rstrip("/")
    fleet = load_or_exit(directory)
    api = fleet.spec.instance.api
    return f"http://{api.host}:{api.port}"


def api_call(method: str, url: str, token: str | None, **kwargs: Any) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        resp = httpx.request(method, url, headers=headers, timeout=930.0, **kwargs)
    except httpx.HTTPError:
        err.print(
            f"no running fleet answers at {url.split('/api/')[0]}: start it with `dagfleet up`"
        )
        raise typer.Exit(3) from None
    if resp.status_code >= 400:
        try:
            detail = resp.json().get("detail", resp.text)
        except ValueError:
            detail = resp.text
        err.print(f"[red]error[/red] {resp.status_code}: {detail}", highlight=False)
        raise typer.Exit(1)
    return resp.json() if resp.content else None


def _status_table(statuses: list[LocationStatus]) -> Table:
    table = Table("LOCATION", "ENV", "COMMIT", "READY", "REASON", "SERVER", "MESSAGE")
    for s in statuses:
        ready = s.condition("Ready")
        synced = s.condition("Synced")
        reason = ready.reason if ready else ""
        message = ready.message if ready else ""
        if synced is not None and synced.status == "False" and ready and ready.status == "True":
            reason, message = synced.reason, synced.message
        table.add_row(
            s.location,
            s.env,
            (s.commit or "-")[:12],
            ready.status if ready else "Unknown",
            reason,
            _server(s),
            message.splitlines()[0][:80] if message else "",
        )
    return table


def _server(s: LocationStatus) -> str:
    """Where the location is served: its socket, plus the debugpy port when debuggable."""
    where = Path(s.address).name if s.address else "-"
    return f"{where} debug:{s.debug_port}" if s.debug_port else where


def register(app: typer.Typer) -> None:
    @app.command()
    def version() -> None:
        """Print dagfleet's version."""
        from importlib.metadata import version as v

        typer.echo(v("dagfleet"))

    @app.command()
    def init(directory: Annotated[Path, typer.Argument(help="Where to write the fleet.")]) -> None:
        """Write the default fleet (medallion in A and B) as editable files."""
        try:
            scaffold.init_fleet(directory)
        except FileExistsError as exc:
            err.print(f"{exc}: choose an empty directory")
            raise typer.Exit(2) from None
        out.print(f"wrote {directory}/fleet.yaml and {directory}/repos/medallion.yaml")
        out.print(f"start it with: cd {directory} && dagfleet up")

    @app.command()
    def up(
        fleet: FleetOpt = None,
        port: Annotated[
            int | None, typer.Option(help="Dagster UI port (fleet.yaml default 3000).")
        ] = None,
        api_port: Annotated[
            int | None, typer.Option(help="dagfleet API port (default 3030).")
        ] = None,
        no_daemon: Annotated[
            bool, typer.Option("--no-daemon", help="Do not run dagster-daemon.")
        ] = False,
        verbose: Annotated[bool, typer.Option("-v", "--verbose")] = False,
    ) -> None:
        """Run the fleet: code servers, Dagster webserver and daemon, the API. Ctrl-C stops all."""
        from dagfleet.app import FleetApp, Settings

        logging.basicConfig(
            level=logging.INFO if verbose else logging.WARNING,
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )
        directory = fleet if fleet is not None else scaffold.find_fleet_dir(Path.cwd())
        if directory is None:
            err.print("no fleet.yaml here: starting the default fleet in ./.dagfleet")
            directory = scaffold.ensure_embedded_default(Path.cwd())
        load_or_exit(directory)
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        app_ = FleetApp(
            Settings(
                fleet_dir=directory, webserver_port=port, api_port=api_port, daemon=not no_daemon
            )
        )
        started = time.monotonic()
        from dagfleet.api.settings import SettingsError
        from dagfleet.status.liveness import FleetAlreadyRunning

        try:
            try:
                app_.start()
            except (SettingsError, FleetAlreadyRunning) as exc:
                err.print(f"[red]error[/red] {exc}", highlight=False)
                raise typer.Exit(2) from None
            err.print(
                f"dagfleet: starting {len(app_.fleet.locations())} locations; UI at {app_.web_url}"
            )

            def announce() -> None:
                if app_.wait_ready(600):
                    elapsed = time.monotonic() - started
                    err.print(f"dagfleet: all locations loaded in {elapsed:.1f}s")

            threading.Thread(target=announce, daemon=True).start()
            while not stop.wait(0.5):
                pass
        finally:
            err.print("dagfleet: stopping")
            app_.stop()
            err.print("dagfleet: stopped")

    @app.command()
    def status(
        fleet: FleetOpt = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    ) -> None:
        """Every location: environment, commit, address and conditions."""
        directory = fleet_dir_or_exit(fleet)
        loaded = load_or_exit(directory)
        from dagfleet.layout import Layout

        store = StatusStore(Layout.for_fleet(Path(loaded.root)).status)
        wanted = [loc.name for loc in loaded.locations()]
        statuses = [s for s in (store.read(n) for n in wanted) if s is not None]
        for repo in loaded.repos.values():
            if repo.suspend:
                statuses += [s for s in store.all() if s.repo == repo.name]
        if as_json:
            typer.echo(json.dumps([s.model_dump() for s in statuses], indent=2))
            return
        out.print(_status_table(statuses))

    @app.command()
    def sync(
        repo: Annotated[str | None, typer.Argument(help="Repo to sync (default: all).")] = None,
        env: Annotated[str | None, typer.Option("--env", help="Only this environment.")] = None,
        fleet: FleetOpt = None,
        api: Annotated[str | None, typer.Option("--api", help="dagfleet API URL.")] = None,
        token: Annotated[str | None, typer.Option(envvar="DAGFLEET_API_TOKEN")] = None,
    ) -> None:
        """Sync now and print what changed."""
        directory = fleet_dir_or_exit(fleet)
        base = api_url(directory, api) + "/api/v1"
        repos = [repo] if repo else sorted(load_or_exit(directory).repos)
        for name in repos:
            params = {"env": env} if env else {}
            result = api_call("POST", f"{base}/repos/{name}/sync", token, params=params)
            for item in result if isinstance(result, list) else result.get("outcomes", []):
                _print_outcome(item)

    @app.command()
    def validate(
        repo: Annotated[str | None, typer.Argument(help="Repo to validate (default: all).")] = None,
        env: Annotated[str | None, typer.Option("--env", help="Only this environment.")] = None,
        fleet: FleetOpt = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    ) -> None:
        """Load every location's definitions in its own environment; exit 1 on any error."""
        from dagfleet.layout import Layout
        from dagfleet.reconcile.validate import validate as run_validate

        directory = fleet_dir_or_exit(fleet)
        loaded = load_or_exit(directory)
        if repo is not None and repo not in loaded.repos:
            err.print(f"unknown repo {repo!r}: known repos are {', '.join(sorted(loaded.repos))}")
            raise typer.Exit(2)
        results = run_validate(loaded, Layout.for_fleet(Path(loaded.root)), repo, env)
        if as_json:
            typer.echo(json.dumps([r.__dict__ for r in results], indent=2))
        else:
            for r in results:
                mark = "[green]ok[/green]" if r.ok else f"[red]{r.reason}[/red]"
                out.print(f"{r.location} {(r.commit or '-')[:12]} {mark} {r.message}")
        if not all(r.ok for r in results):
            raise typer.Exit(1)

    @app.command()
    def promote(
        repo: Annotated[str, typer.Argument(help="Repo to promote.")],
        source: Annotated[str, typer.Option("--from", help="Environment whose live commit moves.")],
        target: Annotated[str, typer.Option("--to", help="Environment whose branch moves.")],
        merge: Annotated[
            bool, typer.Option("--merge", help="Merge when the branch diverged.")
        ] = False,
        fleet: FleetOpt = None,
        api: Annotated[str | None, typer.Option("--api", help="dagfleet API URL.")] = None,
        token: Annotated[str | None, typer.Option(envvar="DAGFLEET_API_TOKEN")] = None,
    ) -> None:
        """Move TARGET's branch to the commit live and Ready in SOURCE, and push it."""
        directory = fleet_dir_or_exit(fleet)
        base = api_url(directory, api) + "/api/v1"
        body = {"repo": repo, "source": source, "target": target, "merge": merge}
        result = api_call("POST", f"{base}/promote", token, json=body)
        how = "merged" if result.get("merged") else "fast-forwarded"
        out.print(
            f"{result['target_branch']} {how} to {result['commit'][:12]} "
            f"(live in {repo}-{source}); {repo}-{target} syncs now"
        )


def _print_outcome(item: dict[str, Any]) -> None:
    name = item.get("location", "?")
    if item.get("error"):
        out.print(
            f"{name}: [red]{item.get('reason') or 'failed'}[/red] {item['error'].splitlines()[0]}"
        )
    elif item.get("changed"):
        prev = (item.get("previous") or "none")[:12]
        out.print(f"{name}: {prev} -> {(item.get('commit') or '')[:12]}")
    else:
        out.print(f"{name}: unchanged at {(item.get('commit') or '-')[:12]}")
