"""`dagfleet repo`: add, update, remove, list, show, logs, suspend and resume repositories.

Commands talk to the running API when it answers and otherwise edit the
fleet files through the registry with the same validation; both paths
produce the same JSON shapes, so the rendering below is shared.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
import yaml
from rich.console import Console
from rich.table import Table

from dagfleet import scaffold
from dagfleet.control import ControlError
from dagfleet.discovery import DiscoveryError, FoundLocation
from dagfleet.gitops.errors import GitError
from dagfleet.gitops.probe import remote_locations
from dagfleet.layout import Layout
from dagfleet.offline import OfflineController
from dagfleet.registry import NotFound, Registry, RegistryError, RepoEntry, to_document
from dagfleet.service.logs import follow, tail_many
from dagfleet.service.models import DeleteResult, RepoResource
from dagfleet.spec import RepoSpec, SpecError, load_fleet
from dagfleet.spec.names import check_env_var_name, check_secret_file

app = typer.Typer(no_args_is_help=True)
err = Console(stderr=True, soft_wrap=True)
out = Console()
DEFAULT_API = "http://127.0.0.1:3030"

FleetOpt = Annotated[
    Path | None,
    typer.Option("--fleet", help="Fleet directory (default: ./fleet.yaml, else ./.dagfleet)."),
]
ApiOpt = Annotated[
    str | None, typer.Option("--api", help="dagfleet API URL [env DAGFLEET_API_URL].")
]
TokenOpt = Annotated[
    str | None, typer.Option("--token", envvar="DAGFLEET_API_TOKEN", help="API bearer token.")
]
NameArg = Annotated[str, typer.Argument(help="Repo name (lowercase letters, digits, '-').")]


class Failure(Exception):
    """A refused request: printed with every problem, then exit with `code`."""

    def __init__(self, message: str, code: int, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.problems = problems or []


def _exit_code(status: int) -> int:
    """An API status as the CLI's exit code: 2 bad input, 3 no running fleet, else 1."""
    return {422: 2, 503: 3}.get(status, 1)


class Api:
    """The running fleet's REST API."""

    def __init__(self, base: str, token: str | None) -> None:
        self.base = base.rstrip("/") + "/api/v1"
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(headers=headers, timeout=httpx.Timeout(930.0, connect=2.0))

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        resp = self.http.request(method, self.base + path, **kwargs)
        if resp.status_code >= 400:
            try:
                body = resp.json()
            except ValueError:
                body = {"detail": resp.text}
            problems = [
                f"{p['file']}: {p['field']}: {p['message']}" if p.get("field") else p["message"]
                for p in body.get("problems", [])
            ]
            code = _exit_code(resp.status_code)
            raise Failure(f"{resp.status_code}: {body.get('detail', '')}", code, problems)
        return resp.json() if resp.content else None

    def logs(self, name: str, env: str | None, tail: int, follow_: bool) -> Iterator[bytes]:
        params: dict[str, Any] = {"tail": tail, "follow": follow_}
        if env:
            params["env"] = env
        url = f"{self.base}/repos/{name}/logs"
        with self.http.stream("GET", url, params=params, timeout=None) as resp:
            if resp.status_code >= 400:
                resp.read()
                try:
                    detail = resp.json().get("detail", "")
                except ValueError:
                    detail = resp.text
                raise Failure(f"{resp.status_code}: {detail}", _exit_code(resp.status_code))
            yield from resp.iter_bytes()


class Local:
    """No fleet running: the registry and the last written statuses, same shapes as the API."""

    def __init__(self, fleet_dir: Path) -> None:
        self.registry = Registry(fleet_dir)
        self.controller = OfflineController(fleet_dir)
        self.layout = Layout.for_fleet(fleet_dir)

    def _resource(self, entry: RepoEntry) -> dict[str, Any]:
        return RepoResource(
            name=entry.spec.name,
            etag=entry.etag,
            suspended=entry.spec.suspend,
            locations=self.registry.locations(entry.spec),
            spec=entry.spec,
        ).model_dump(mode="json")

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        parts = path.strip("/").split("/")
        body: dict[str, Any] = kwargs.get("json") or {}
        params = kwargs.get("params", {})
        if parts == ["repos"] and method == "GET":
            return [self._resource(e) for e in self.registry.list()]
        if parts == ["repos"] and method == "POST":
            return self._resource(self.registry.create(body))
        if parts == ["locations"]:
            return [s.model_dump(mode="json") for s in self.controller.statuses()]
        name = parts[1]
        if len(parts) == 3 and parts[2] == "sync":
            # As the API: an unknown repo or environment is refused before the runtime is asked.
            self.registry.get(name)
            self.registry.check_env(params.get("env"))
            self.controller.sync(name, params.get("env"), True)
        if method == "GET":
            return self._resource(self.registry.get(name))
        if method == "PATCH":
            return self._resource(self.registry.patch(name, body))
        if method == "DELETE":
            spec = self.registry.delete(name)
            purge = bool(params.get("purge_data"))
            removed, notes = self.registry.purge_data(spec) if purge else ([], [])
            return DeleteResult(
                name=spec.name, purged=purge, purged_paths=removed, notes=notes
            ).model_dump()
        raise AssertionError(f"no local route for {method} {path}")

    def logs(self, name: str, env: str | None, tail: int, follow_: bool) -> Iterator[bytes]:
        # The API's checks, in its order (routes_repos.repo_logs).
        entry = self.registry.get(name)
        self.registry.check_env(env)
        locations = self.registry.locations_in(entry.spec, env)
        if not locations:
            raise NotFound(f"repo {name!r} has no location in environment {env!r}")
        paths = {loc: self.layout.log(loc) for loc in locations}
        if not follow_:
            yield tail_many(paths, tail)[0]
            return
        agen = follow(paths, tail, 0.2, lambda: False, None)
        loop = asyncio.new_event_loop()
        try:
            while True:
                yield loop.run_until_complete(agen.__anext__())
        except StopAsyncIteration:
            return
        finally:
            loop.close()


def _api_url(given: str | None, fleet_dir: Path | None) -> str:
    if given:
        return given
    if os.environ.get("DAGFLEET_API_URL"):
        return os.environ["DAGFLEET_API_URL"]
    if fleet_dir is not None:
        try:
            api = load_fleet(fleet_dir).spec.instance.api
            return f"http://{api.host}:{api.port}"
        except SpecError:
            pass
    return DEFAULT_API


def backend(fleet: Path | None, api: str | None, token: str | None) -> Api | Local:
    """The running API if it answers, else the fleet files."""
    fleet_dir = fleet if fleet is not None else scaffold.find_fleet_dir(Path.cwd())
    remote = Api(_api_url(api, fleet_dir), token)
    try:
        remote.http.get(remote.base + "/healthz", timeout=1.0).raise_for_status()
        return remote
    except httpx.HTTPError:
        pass
    if fleet_dir is None:
        raise Failure("no fleet here and no running API: run `dagfleet up` or pass --fleet DIR", 2)
    if api:
        err.print(f"no API answers at {api}: editing the files in {fleet_dir}")
    return Local(fleet_dir)


def run(fn: Any) -> Any:
    """Turn every refusal into its message, each problem on a line, and an exit code."""
    try:
        return fn()
    except SpecError as exc:
        for p in exc.problems:
            err.print(f"[red]error[/red] {p}", highlight=False)
        raise typer.Exit(2) from None
    except (RegistryError, ControlError) as exc:
        err.print(f"[red]error[/red] {exc}", highlight=False)
        code = getattr(exc, "status_code", 1)
        raise typer.Exit(3 if code == 503 else 1) from None
    except Failure as exc:
        for line in exc.problems:
            err.print(f"[red]error[/red] {line}", highlight=False)
        if not exc.problems or exc.code != 2:
            err.print(f"[red]error[/red] {exc}", highlight=False)
        raise typer.Exit(exc.code) from None


def _ready(status: dict[str, Any]) -> str:
    for c in status.get("conditions", []):
        if c["type"] == "Ready":
            return f"{c['status']} ({c['reason']})"
    return "Unknown"


def _wait_loaded(client: Api, locations: list[str], timeout: float) -> bool:
    """Show each location's progress (clone, install, first load) until Ready or failed."""
    deadline = time.monotonic() + timeout
    pending = set(locations)
    failed = False
    with err.status("waiting for the locations to load") as spinner:
        while pending and time.monotonic() < deadline:
            for status in client.call("GET", "/locations"):
                name = status["location"]
                if name not in pending:
                    continue
                conds = {c["type"]: c for c in status.get("conditions", [])}
                ready, synced = conds.get("Ready"), conds.get("Synced")
                if ready and ready["status"] == "True":
                    err.print(f"{name}: [green]Ready[/green] at {(status['commit'] or '')[:12]}")
                    pending.discard(name)
                elif synced and synced["status"] == "False" and synced["reason"] != "Progressing":
                    err.print(f"{name}: [red]{synced['reason']}[/red] {synced['message'][:200]}")
                    pending.discard(name)
                    failed = True
                elif synced:
                    spinner.update(f"{name}: {synced['reason']} {synced['message'][:80]}")
            time.sleep(0.5)
    if pending:
        err.print(f"still loading after {timeout:.0f}s: {', '.join(sorted(pending))}")
    return not pending and not failed


def _bad(flag: str, item: str, problem: str) -> typer.Exit:
    shown = f"{flag} {item}" if item else flag
    err.print(f"[red]error[/red] {shown}: {problem}", highlight=False)
    return typer.Exit(2)


def _environment(
    literals: list[str], secret_envs: list[str], secret_files: list[str]
) -> list[dict[str, str]]:
    """The repo's `environment` from the three flags, checked with the spec's own rules.

    Each error names the flag and the fix. A --secret-env whose variable name is
    invalid is never echoed: users who mistake the flag for KEY=SECRET would see
    their secret in the terminal (and in CI logs).
    """
    variables: list[dict[str, str]] = []
    seen: dict[str, str] = {}
    flags = [("--env", i, "VALUE") for i in literals]
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
        if flag == "--env":
            variables.append({"name": key, "value": value})
        elif flag == "--secret-env":
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


def _monorepo_locations(url: str, branch: str | None) -> list[FoundLocation]:
    """The repository's code locations when it holds several; [] otherwise or when it
    cannot be read now (the runtime then reports what it finds)."""
    try:
        return remote_locations(url, branch)
    except (GitError, DiscoveryError) as exc:
        err.print(f"[yellow]note[/yellow] could not look into {url} for code locations: {exc}")
        return []


@app.command()
def add(
    name: NameArg,
    git_url: Annotated[str, typer.Option("--git-url", help="Clone URL or local path.")],
    branch: Annotated[str | None, typer.Option(help="Branch in every environment.")] = None,
    module: Annotated[str | None, typer.Option("--module", help="Module with Definitions.")] = None,
    python_file: Annotated[str | None, typer.Option("--python-file")] = None,
    package: Annotated[str | None, typer.Option("--package")] = None,
    working_directory: Annotated[str | None, typer.Option("--working-directory")] = None,
    env: Annotated[
        list[str] | None,
        typer.Option("--env", help="KEY=VALUE, repeatable; the value is stored in the repo file."),
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
        err.print("[red]error[/red] give at most one of --module, --python-file and --package")
        raise typer.Exit(2)
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
    variables = _environment(env or [], secret_env or [], secret_file or [])
    if variables:
        doc["environment"] = variables
    if environments:
        doc["environments"] = [e.strip() for e in environments.split(",") if e.strip()]
    if not targets and working_directory is None and discover:
        found = _monorepo_locations(git_url, branch)
        if found:
            doc["locations"] = [f.entry() for f in found]
            out.print(
                f"{name} holds {len(found)} code locations: "
                + ", ".join(f"{f.name} ({f.working_directory})" for f in found)
            )

    def go() -> None:
        client = backend(fleet, api, token)
        created = client.call("POST", "/repos", json=doc)
        out.print(f"added {name}: locations {', '.join(created['locations']) or 'none'}")
        if isinstance(client, Local):
            out.print("no fleet is running: the locations start with `dagfleet up`")
        elif (
            wait
            and created["locations"]
            and not _wait_loaded(client, created["locations"], timeout)
        ):
            raise typer.Exit(1)

    run(go)


@app.command()
def update(
    name: NameArg,
    env: Annotated[str | None, typer.Option("--env", help="Only this environment.")] = None,
    fleet: FleetOpt = None,
    api: ApiOpt = None,
    token: TokenOpt = None,
) -> None:
    """Sync the repo now (fetch, install, load check, publish) and print what changed."""

    def go() -> None:
        client = backend(fleet, api, token)
        params = {"env": env} if env else {}
        with err.status(f"syncing {name}"):
            result = client.call("POST", f"/repos/{name}/sync", params=params)
        for item in result["outcomes"]:
            loc = item["location"]
            if item.get("error"):
                out.print(f"{loc}: [red]{item.get('reason') or 'failed'}[/red] {item['error']}")
            elif item.get("changed"):
                before = (item.get("previous") or "none")[:12]
                out.print(f"{loc}: {before} -> {(item.get('commit') or '')[:12]}")
            else:
                out.print(f"{loc}: unchanged at {(item.get('commit') or '-')[:12]}")

    run(go)


@app.command()
def remove(
    name: NameArg,
    purge_data: Annotated[bool, typer.Option("--purge-data", help="Also delete its data.")] = False,
    fleet: FleetOpt = None,
    api: ApiOpt = None,
    token: TokenOpt = None,
) -> None:
    """Unregister a repo: its code servers stop; its data stays unless --purge-data."""

    def go() -> None:
        client = backend(fleet, api, token)
        params = {"purge_data": "true"} if purge_data else {}
        result = client.call("DELETE", f"/repos/{name}", params=params)
        out.print(f"removed {name}" + (" and its data" if result["purged"] else ""))
        for note in result.get("notes", []):
            err.print(note)

    run(go)


def _set_suspend(name: str, suspend: bool, fleet: Path | None, api: str | None, tok: Any) -> None:
    def go() -> None:
        client = backend(fleet, api, tok)
        client.call("PATCH", f"/repos/{name}", json={"suspend": True if suspend else None})
        out.print(f"{name} {'suspended' if suspend else 'resumed'}")

    run(go)


@app.command()
def suspend(
    name: NameArg, fleet: FleetOpt = None, api: ApiOpt = None, token: TokenOpt = None
) -> None:
    """Stop the repo's code servers but keep it registered (Flux's suspend)."""
    _set_suspend(name, True, fleet, api, token)


@app.command()
def resume(
    name: NameArg, fleet: FleetOpt = None, api: ApiOpt = None, token: TokenOpt = None
) -> None:
    """Start a suspended repo again where it was."""
    _set_suspend(name, False, fleet, api, token)


@app.command("list")
def list_(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    fleet: FleetOpt = None,
    api: ApiOpt = None,
    token: TokenOpt = None,
) -> None:
    """Every registered repo and the readiness of its locations."""

    def go() -> None:
        client = backend(fleet, api, token)
        repos = client.call("GET", "/repos")
        statuses = {s["location"]: s for s in client.call("GET", "/locations")}
        if as_json:
            for repo in repos:
                repo["status"] = [statuses[n] for n in repo["locations"] if n in statuses]
            typer.echo(json.dumps(repos, indent=2))
            return
        table = Table("NAME", "GIT URL", "BRANCH", "SUSPENDED", "LOCATIONS")
        for repo in repos:
            spec = repo["spec"]
            locs = ", ".join(
                f"{n}: {_ready(statuses[n]) if n in statuses else 'not synced'}"
                for n in repo["locations"]
            )
            branch = spec.get("branch") or ", ".join(
                f"{k}={v}" for k, v in spec.get("branches", {}).items()
            )
            table.add_row(
                repo["name"],
                spec["git_url"],
                branch or "(env default)",
                "yes" if repo["suspended"] else "",
                locs,
            )
        out.print(table)

    run(go)


@app.command()
def show(name: NameArg, fleet: FleetOpt = None, api: ApiOpt = None, token: TokenOpt = None) -> None:
    """The repo file as stored, and its locations' commits and conditions."""

    def go() -> None:
        client = backend(fleet, api, token)
        repo = client.call("GET", f"/repos/{name}")
        doc = to_document(RepoSpec.model_validate(repo["spec"]))
        out.print(yaml.safe_dump(doc, sort_keys=False).rstrip(), highlight=False)
        out.print(f"etag: {repo['etag']}")
        statuses = {s["location"]: s for s in client.call("GET", "/locations")}
        table = Table("LOCATION", "COMMIT", "LAST GOOD", "READY", "CONDITIONS")
        for loc in repo["locations"]:
            s = statuses.get(loc)
            if s is None:
                table.add_row(loc, "-", "-", "not synced", "")
                continue
            conds = "; ".join(f"{c['type']}={c['status']} {c['reason']}" for c in s["conditions"])
            table.add_row(
                loc,
                (s["commit"] or "-")[:12],
                (s["last_good_commit"] or "-")[:12],
                _ready(s),
                conds,
            )
        out.print(table)

    run(go)


@app.command()
def logs(
    name: NameArg,
    env: Annotated[str | None, typer.Option("--env", help="Only this environment.")] = None,
    follow_: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing.")] = False,
    tail: Annotated[
        int, typer.Option(min=0, max=100_000, help="Lines from the end (as the API: 0-100000).")
    ] = 100,
    fleet: FleetOpt = None,
    api: ApiOpt = None,
    token: TokenOpt = None,
) -> None:
    """Code-server output of the repo's locations."""

    def go() -> None:
        client = backend(fleet, api, token)
        try:
            for chunk in client.logs(name, env, tail, follow_):
                sys.stdout.buffer.write(chunk)
                sys.stdout.buffer.flush()
        except KeyboardInterrupt:
            pass

    run(go)
