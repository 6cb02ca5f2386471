"""One client for every command: the running fleet's REST API, or the fleet files.

`Client` is `FleetService`'s surface. Offline it *is* a `FleetService` over the
fleet directory with the `OfflineController` (edits go through the registry with
the API's validation; anything that needs the runtime answers 503). Online,
`RemoteClient` speaks HTTP and hands back the same service models, so commands
never look at which one they hold except to wait for locations to load.

`connect` picks: the API if it answers and serves the fleet the user means
(compared by fleet id), else the files. Changes through an API serving a
different fleet are refused (exit 2); reads go ahead with a warning.
Nothing here imports the API package (nor FastAPI): only httpx and models.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import httpx

from dagfleet.alerts.model import AlertsReport
from dagfleet.audit.models import AuditEntry
from dagfleet.cli import output
from dagfleet.cli.discovery import resolve_fleet
from dagfleet.control import PromoteOutcome
from dagfleet.frontdoor.tokens import read_local_token
from dagfleet.history.models import PublishAttempt
from dagfleet.layout import Layout
from dagfleet.service.models import (
    DeleteResult,
    EnvironmentOut,
    FleetIdentity,
    PromoteRequest,
    RepoResource,
    SyncResult,
)
from dagfleet.service.playground import PlaygroundDelete, PlaygroundListing, PlaygroundWrite
from dagfleet.service.rollback import PinResult
from dagfleet.status import LocationStatus

DEFAULT_API = "http://127.0.0.1:3030"
PREFIX = "/api/v1"
PROBE_SECONDS = 1.0
# A sync waits for install and load checks; the API's own limit is below this.
CALL_TIMEOUT = httpx.Timeout(930.0, connect=2.0)


class CliFailure(Exception):
    """A refusal the CLI reports: its message, any problems, then exit with `code`."""

    def __init__(self, message: str, code: int, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.problems = problems or []


class ApiError(Exception):
    """An error response of the API: its status, `detail` and problems (ErrorBody)."""

    def __init__(self, status: int, detail: str, problems: list[str] | None = None) -> None:
        super().__init__(f"{status}: {detail}")
        self.status_code = status
        self.problems = problems or []


def exit_code(status: int) -> int:
    """An HTTP status as the CLI's exit code: 2 bad input, 3 no running fleet, else 1."""
    if status == 503:
        return 3
    if status in (400, 413, 422):
        return 2
    return 1


class Playground(Protocol):
    def list(self) -> PlaygroundListing: ...
    def write(self, name: str, data: bytes) -> PlaygroundWrite: ...
    def delete(self, name: str) -> PlaygroundDelete: ...


class Client(Protocol):
    """What commands call: FleetService's methods (and the API's routes)."""

    def identity(self) -> FleetIdentity: ...
    def list_repos(self) -> list[RepoResource]: ...
    def get_repo(self, name: str) -> RepoResource: ...
    def create_repo(self, doc: Mapping[str, Any]) -> RepoResource: ...
    def replace_repo(
        self, name: str, doc: Mapping[str, Any], if_match: str | None = None
    ) -> RepoResource: ...
    def patch_repo(
        self, name: str, patch: Mapping[str, Any], if_match: str | None = None
    ) -> RepoResource: ...
    def set_suspended(self, name: str, suspended: bool) -> RepoResource: ...
    def delete_repo(
        self, name: str, purge_data: bool = False, if_match: str | None = None
    ) -> DeleteResult: ...
    def sync_repo(self, name: str, env: str | None = None, wait: bool = True) -> SyncResult: ...
    def tail_logs(self, name: str, env: str | None, lines: int) -> bytes: ...
    def locations(self) -> list[LocationStatus]: ...
    def location(self, name: str) -> LocationStatus: ...
    def environments(self) -> list[EnvironmentOut]: ...
    def promote(self, request: PromoteRequest) -> PromoteOutcome: ...
    def playground(self, env: str) -> Playground: ...
    def playground_changed(self, env: str) -> None: ...
    def alerts(self) -> AlertsReport: ...
    def history(self, location: str, limit: int = 20) -> list[PublishAttempt]: ...
    def rollback(self, location: str, to: str | None = None) -> PinResult: ...
    def unpin(self, location: str) -> PinResult: ...
    def fleet_logs(self, source: str | None, lines: int) -> bytes: ...
    def audit(
        self,
        actor: str | None = None,
        action: str | None = None,
        location: str | None = None,
        since: str | None = None,
        limit: int = 100,
        before: int | None = None,
    ) -> list[AuditEntry]: ...


# ---- the REST API ----------------------------------------------------------------------


def _raise_for(resp: httpx.Response) -> None:
    if resp.status_code < 400:
        return
    try:
        body = resp.json()
    except ValueError:
        body = {"detail": resp.text}
    if not isinstance(body, dict):
        body = {"detail": str(body)}
    problems = [
        f"{p.get('file')}: {p['field']}: {p['message']}" if p.get("field") else str(p["message"])
        for p in body.get("problems") or []
    ]
    raise ApiError(resp.status_code, str(body.get("detail", "")), problems)


class RemotePlayground:
    def __init__(self, client: RemoteClient, env: str) -> None:
        self.client = client
        self.env = env

    def list(self) -> PlaygroundListing:
        return PlaygroundListing.model_validate(self.client.call("GET", f"/playground/{self.env}"))

    def write(self, name: str, data: bytes) -> PlaygroundWrite:
        headers = {"Content-Type": "text/x-python"}
        body = self.client.call(
            "PUT", f"/playground/{self.env}/{name}", content=data, headers=headers
        )
        return PlaygroundWrite.model_validate(body)

    def delete(self, name: str) -> PlaygroundDelete:
        body = self.client.call("DELETE", f"/playground/{self.env}/{name}")
        return PlaygroundDelete.model_validate(body)


class RemoteClient:
    """The running fleet's REST API: one place for the token, timeouts and error mapping."""

    def __init__(self, url: str, token: str | None) -> None:
        self.url = url.rstrip("/").removesuffix(PREFIX)
        self.token = token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=self.url + PREFIX, headers=headers, timeout=CALL_TIMEOUT)

    def clone(self) -> RemoteClient:
        """Another connection to the same API (for a second thread)."""
        return RemoteClient(self.url, self.token)

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            resp = self.http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise CliFailure(f"the fleet API at {self.url} stopped answering: {exc}", 3) from None
        _raise_for(resp)
        return resp.json() if resp.content else None

    def health(self) -> dict[str, Any] | None:
        """/healthz's answer, or None when nothing (or not a dagfleet API) answers."""
        try:
            resp = self.http.get("/healthz", timeout=PROBE_SECONDS)
            body = resp.json() if resp.status_code == 200 else None
        except (httpx.HTTPError, ValueError):
            return None
        return body if isinstance(body, dict) and body.get("status") else None

    def identity(self) -> FleetIdentity:
        return FleetIdentity.model_validate(self.call("GET", "/fleet"))

    def list_repos(self) -> list[RepoResource]:
        return [RepoResource.model_validate(r) for r in self.call("GET", "/repos")]

    def get_repo(self, name: str) -> RepoResource:
        return RepoResource.model_validate(self.call("GET", f"/repos/{name}"))

    def create_repo(self, doc: Mapping[str, Any]) -> RepoResource:
        return RepoResource.model_validate(self.call("POST", "/repos", json=dict(doc)))

    def replace_repo(
        self, name: str, doc: Mapping[str, Any], if_match: str | None = None
    ) -> RepoResource:
        headers = {"If-Match": if_match} if if_match else {}
        body = self.call("PUT", f"/repos/{name}", json=dict(doc), headers=headers)
        return RepoResource.model_validate(body)

    def patch_repo(
        self, name: str, patch: Mapping[str, Any], if_match: str | None = None
    ) -> RepoResource:
        headers = {"If-Match": if_match} if if_match else {}
        body = self.call("PATCH", f"/repos/{name}", json=dict(patch), headers=headers)
        return RepoResource.model_validate(body)

    def set_suspended(self, name: str, suspended: bool) -> RepoResource:
        return self.patch_repo(name, {"suspend": True if suspended else None})

    def delete_repo(
        self, name: str, purge_data: bool = False, if_match: str | None = None
    ) -> DeleteResult:
        params = {"purge_data": "true"} if purge_data else {}
        headers = {"If-Match": if_match} if if_match else {}
        body = self.call("DELETE", f"/repos/{name}", params=params, headers=headers)
        return DeleteResult.model_validate(body)

    def sync_repo(self, name: str, env: str | None = None, wait: bool = True) -> SyncResult:
        params: dict[str, str] = {"wait": "true" if wait else "false"}
        if env:
            params["env"] = env
        return SyncResult.model_validate(self.call("POST", f"/repos/{name}/sync", params=params))

    def _log_params(self, env: str | None, lines: int, follow: bool) -> dict[str, Any]:
        params: dict[str, Any] = {"tail": lines, "follow": "true" if follow else "false"}
        if env:
            params["env"] = env
        return params

    def tail_logs(self, name: str, env: str | None, lines: int) -> bytes:
        try:
            resp = self.http.get(f"/repos/{name}/logs", params=self._log_params(env, lines, False))
        except httpx.TransportError as exc:
            raise CliFailure(f"the fleet API at {self.url} stopped answering: {exc}", 3) from None
        _raise_for(resp)
        return resp.content

    def follow_logs(self, name: str, env: str | None, lines: int) -> Iterator[bytes]:
        params = self._log_params(env, lines, True)
        with self.http.stream("GET", f"/repos/{name}/logs", params=params, timeout=None) as resp:
            if resp.status_code >= 400:
                resp.read()
                _raise_for(resp)
            yield from resp.iter_bytes()

    def locations(self) -> list[LocationStatus]:
        return [LocationStatus.model_validate(s) for s in self.call("GET", "/locations")]

    def location(self, name: str) -> LocationStatus:
        return LocationStatus.model_validate(self.call("GET", f"/locations/{name}"))

    def environments(self) -> list[EnvironmentOut]:
        return [EnvironmentOut.model_validate(e) for e in self.call("GET", "/environments")]

    def promote(self, request: PromoteRequest) -> PromoteOutcome:
        body = self.call("POST", "/promote", json=request.model_dump(mode="json"))
        return PromoteOutcome(**body)

    def playground(self, env: str) -> RemotePlayground:
        return RemotePlayground(self, env)

    def playground_changed(self, env: str) -> None:
        """The API's PUT and DELETE already woke the playground loop."""

    def alerts(self) -> AlertsReport:
        return AlertsReport.model_validate(self.call("GET", "/alerts"))

    def history(self, location: str, limit: int = 20) -> list[PublishAttempt]:
        body = self.call("GET", f"/locations/{location}/history", params={"limit": limit})
        return [PublishAttempt.model_validate(a) for a in body]

    def rollback(self, location: str, to: str | None = None) -> PinResult:
        body = self.call("POST", f"/locations/{location}/rollback", json={"to": to})
        return PinResult.model_validate(body)

    def unpin(self, location: str) -> PinResult:
        return PinResult.model_validate(self.call("POST", f"/locations/{location}/unpin"))

    def audit(
        self,
        actor: str | None = None,
        action: str | None = None,
        location: str | None = None,
        since: str | None = None,
        limit: int = 100,
        before: int | None = None,
    ) -> list[AuditEntry]:
        given = {"actor": actor, "action": action, "location": location, "since": since}
        params: dict[str, Any] = {k: v for k, v in given.items() if v is not None}
        params["limit"] = limit
        if before is not None:
            params["before"] = before
        return [AuditEntry.model_validate(e) for e in self.call("GET", "/audit", params=params)]

    def _fleet_log_params(self, source: str | None, lines: int, follow: bool) -> dict[str, Any]:
        params: dict[str, Any] = {"tail": lines, "follow": "true" if follow else "false"}
        if source:
            params["source"] = source
        return params

    def fleet_logs(self, source: str | None, lines: int) -> bytes:
        try:
            resp = self.http.get("/logs", params=self._fleet_log_params(source, lines, False))
        except httpx.TransportError as exc:
            raise CliFailure(f"the fleet API at {self.url} stopped answering: {exc}", 3) from None
        _raise_for(resp)
        return resp.content

    def follow_fleet_logs(self, source: str | None, lines: int) -> Iterator[bytes]:
        params = self._fleet_log_params(source, lines, True)
        with self.http.stream("GET", "/logs", params=params, timeout=None) as resp:
            if resp.status_code >= 400:
                resp.read()
                _raise_for(resp)
            yield from resp.iter_bytes()


# ---- picking one -----------------------------------------------------------------------


def local_client(fleet_dir: Path) -> Client:
    """The fleet files, through the service with the offline controller."""
    from dagfleet.offline import OfflineController
    from dagfleet.service.fleet import FleetService

    return FleetService(fleet_dir, OfflineController(fleet_dir))


def api_url(given: str | None, fleet_dir: Path | None) -> str:
    """--api (or DAGFLEET_API_URL through the option), else the fleet's instance.api."""
    if given:
        return given
    if fleet_dir is not None:
        with contextlib.suppress(Exception):  # a broken fleet.yaml is reported by the command
            from dagfleet.registry import Registry

            api = Registry(fleet_dir).fleet_spec().instance.api
            host = f"[{api.host}]" if ":" in api.host else api.host
            return f"http://{host}:{api.port}"
    return DEFAULT_API


def _local_identity(fleet_dir: Path) -> tuple[str, str, str | None]:
    """(name, root, id) of the fleet in `fleet_dir`; the id only if it was ever made.

    A fleet that never ran has no id yet, so it cannot be the one answering; reading
    (not making) the id keeps read-only commands from writing into the fleet.
    """
    from dagfleet.layout import Layout
    from dagfleet.service.identity import ID_FILE

    name = fleet_dir.name
    with contextlib.suppress(Exception):
        from dagfleet.registry import Registry

        name = Registry(fleet_dir).fleet_spec().name
    layout = Layout.for_fleet(fleet_dir)
    try:
        made = (layout.root / ID_FILE).read_text(encoding="utf-8").strip() or None
    except OSError:
        made = None
    return name, str(fleet_dir), made


def _wrong_fleet(remote: RemoteClient, health: Mapping[str, Any], fleet_dir: Path) -> str | None:
    """Why the API at `remote` is not the fleet in `fleet_dir`, or None when it is."""
    theirs = health.get("fleet_id")
    if not theirs:
        return None  # an API that does not say which fleet it serves: nothing to compare
    name, root, ours = _local_identity(fleet_dir)
    if ours == theirs:
        return None
    try:
        ident = remote.identity()
        other = f"{ident.name!r} at {ident.root}"
    except (ApiError, CliFailure):
        other = f"{health.get('fleet')!r} (id {theirs})"
    return (
        f"the API at {remote.url} serves fleet {other}, not fleet {name!r} at {root}. "
        f"Pass --api URL of the API serving {root} (DAGFLEET_API_URL), "
        f"--fleet DIR for the fleet you mean (DAGFLEET_FLEET), or cd into it"
    )


@dataclass
class Connection:
    """The client chosen and what it is: remote (an API answered) or the fleet's files."""

    client: Client
    fleet_dir: Path | None

    @property
    def remote(self) -> RemoteClient | None:
        return self.client if isinstance(self.client, RemoteClient) else None


def _loopback(url: str) -> bool:
    host = httpx.URL(url).host
    return host in ("localhost", "127.0.0.1", "::1") or host.startswith("127.")


def connect(fleet: Path | None, api: str | None, token: str | None, *, changes: bool) -> Connection:
    """The running API if it answers and is the fleet meant, else the fleet files.

    `changes`: the command edits or acts, so an API serving another fleet is refused
    (exit 2). A read goes ahead with a warning: through the API when its URL was
    given (--api, DAGFLEET_API_URL), else from the files of the fleet found here.
    """
    fleet_dir = resolve_fleet(fleet)
    remote = RemoteClient(api_url(api, fleet_dir), token)
    health = remote.health()
    if health is not None:
        wrong = None if fleet_dir is None else _wrong_fleet(remote, health, fleet_dir)
        if wrong is None:
            if token is None and fleet_dir is not None and _loopback(remote.url):
                # The fleet's own API on this machine: `dagfleet up` left its admin token in
                # the state directory, which whoever runs this can read anyway.
                local = read_local_token(Layout.for_fleet(fleet_dir).root)
                if local:
                    remote = RemoteClient(remote.url, local)
            return Connection(remote, fleet_dir)
        if changes:
            raise CliFailure(f"refusing to change another fleet: {wrong}", 2)
        if api or fleet_dir is None:  # asked for by URL: read it, saying it is another fleet
            output.warning(f"reading another fleet: {wrong}")
            return Connection(remote, fleet_dir)
        output.warning(f"{wrong}; showing the files of {fleet_dir} instead")
        return Connection(local_client(fleet_dir), fleet_dir)
    if fleet_dir is None:
        raise CliFailure(
            "no fleet here and no running API: run `dagfleet up` for the default fleet or "
            "`dagfleet init DIR`, pass --fleet DIR (or set DAGFLEET_FLEET), or cd into a fleet",
            2,
        )
    if api and api != os.environ.get("DAGFLEET_API_URL"):  # the flag, not a standing default
        output.note(f"no API answers at {api}: using the files in {fleet_dir}")
    return Connection(local_client(fleet_dir), fleet_dir)


def follow_logs(client: Client, name: str, env: str | None, lines: int) -> Iterator[bytes]:
    """The tail, then new output as it comes, from the API or straight from the files."""
    if isinstance(client, RemoteClient):
        yield from client.follow_logs(name, env, lines)
        return
    from dagfleet.service.fleet import FleetService
    from dagfleet.service.logs import follow

    assert isinstance(client, FleetService)
    agen = follow(client.log_paths(name, env), lines, 0.2, lambda: False, None)
    loop = asyncio.new_event_loop()
    try:
        while True:
            yield loop.run_until_complete(agen.__anext__())
    except StopAsyncIteration:
        return
    finally:
        loop.close()
