"""`FleetService`: every operation on a fleet, for whichever front door asks.

The REST API's routes and the CLI (offline, against the fleet files) call these
methods and nothing else: validation, registry writes and what to tell the
runtime live here once. The runtime is reached through a `Controller`: the live
one from `dagfleet up`, or the offline one that only reads the last statuses.
"""

from __future__ import annotations

import builtins
import contextlib
import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dagfleet.alerts import report as alerts_report
from dagfleet.alerts.model import AlertsReport
from dagfleet.audit.models import Action, Actor, AuditEntry, AuditQuery, detail_json
from dagfleet.control import ControlError, Controller, PromoteOutcome
from dagfleet.layout import Layout
from dagfleet.registry import NotFound, Registry, RepoEntry
from dagfleet.service import rollback as pins
from dagfleet.service.audit import AuditLog, Note, changed_fields, local_actor, patch_action
from dagfleet.service.fleet_logs import fleet_log_paths
from dagfleet.service.identity import dagfleet_version, fleet_id
from dagfleet.service.logs import tail_many
from dagfleet.service.models import (
    DeleteResult,
    EnvironmentOut,
    FleetIdentity,
    PromoteRequest,
    RepoResource,
    SyncResult,
)
from dagfleet.service.playground import (
    PlaygroundDelete,
    PlaygroundFiles,
    PlaygroundWrite,
    check_environment,
)
from dagfleet.spec import FleetSpec
from dagfleet.status import LocationStatus

if TYPE_CHECKING:
    from dagfleet.audit.writer import AuditWriter
    from dagfleet.history.models import PublishAttempt
    from dagfleet.service.history import HistoryReader


@dataclass
class _Readers:
    """Opened on first use (SQLAlchemy), shared by every `acting` view of one service."""

    history: HistoryReader | None = None


class FleetService:
    """One fleet directory's repos, locations, promotion, logs and playground files.

    `actor` is who the changes are recorded for in the audit log (default: the OS
    user, via `offline`); the API binds each request's principal with `acting`.
    `audit` is the running fleet's writer; without one, entries are written at once.
    """

    def __init__(
        self,
        fleet_dir: Path,
        controller: Controller,
        actor: Actor | None = None,
        audit: AuditWriter | None = None,
    ) -> None:
        self.fleet_dir = fleet_dir.resolve()
        self.registry = Registry(self.fleet_dir)
        self.layout = Layout.for_fleet(self.fleet_dir)
        self.controller = controller
        self.actor = actor or local_actor()
        self.audit_log = AuditLog(self.registry, self.layout, audit)
        self._readers = _Readers()
        # Called after every change the runtime must see (the API drops cached statuses).
        self.listeners: builtins.list[Callable[[], None]] = []

    def acting(self, actor: Actor) -> FleetService:
        """This service, recording its changes for `actor` (one request's view; shares all)."""
        view = copy.copy(self)
        view.actor = actor
        return view

    def _audited(
        self,
        action: Action,
        location: str | None = None,
        repository: str | None = None,
        environment: str | None = None,
        target: str | None = None,
    ) -> contextlib.AbstractContextManager[Note]:
        """Record `action` for this service's actor when the block ends (service/audit.py)."""
        return self.audit_log.action(self.actor, action, location, repository, environment, target)

    def _repo_file(self, name: str) -> str:
        path = self.registry.path(name)
        return str(path.relative_to(self.fleet_dir)) if path else f"repos/{name}.yaml"

    def _changed(self) -> None:
        for listener in self.listeners:
            listener()
        self.controller.registry_changed()

    def _refreshed(self) -> None:
        for listener in self.listeners:
            listener()

    # ---- the fleet --------------------------------------------------------------------
    def identity(self) -> FleetIdentity:
        try:
            name = self.registry.fleet_spec().name
        except Exception:  # an invalid fleet.yaml still has an identity: its directory
            name = self.fleet_dir.name
        return FleetIdentity(
            name=name,
            id=fleet_id(self.layout),
            root=str(self.fleet_dir),
            version=dagfleet_version(),
        )

    def fleet_spec(self) -> FleetSpec:
        return self.registry.fleet_spec()

    # ---- repos ------------------------------------------------------------------------
    def _resource(self, entry: RepoEntry, fleet: FleetSpec | None = None) -> RepoResource:
        return RepoResource(
            name=entry.spec.name,
            etag=entry.etag,
            suspended=entry.spec.suspend,
            locations=self.registry.locations(entry.spec, fleet),
            spec=entry.spec,
        )

    def list_repos(self) -> builtins.list[RepoResource]:
        """Every registered repo, suspended ones included."""
        fleet = self.registry.fleet_spec()
        return [self._resource(e, fleet) for e in self.registry.list()]

    def get_repo(self, name: str) -> RepoResource:
        return self._resource(self.registry.get(name))

    def create_repo(self, doc: Mapping[str, Any]) -> RepoResource:
        """Register a repo; a running fleet starts syncing its locations at once."""
        name = doc.get("name") if isinstance(doc, Mapping) else None
        with self._audited(Action.REPO_ADD, repository=str(name) if name else None) as note:
            entry = self.registry.create(doc)
            note.target = self._repo_file(entry.spec.name)
            note.detail = detail_json(git_url=entry.spec.git_url)
            self._changed()
        return self._resource(entry)

    def _rewrite(
        self, action: Action, name: str, write: Callable[[], RepoEntry], **detail: Any
    ) -> RepoEntry:
        with self._audited(action, repository=name) as note:
            before = self.registry.get(name).spec.model_dump(mode="json", exclude_unset=True)
            entry = write()
            after = entry.spec.model_dump(mode="json", exclude_unset=True)
            note.target = self._repo_file(entry.spec.name)
            note.detail = detail_json(changed=changed_fields(before, after), **detail)
            self._changed()
        return entry

    def replace_repo(
        self, name: str, doc: Mapping[str, Any], if_match: str | None = None
    ) -> RepoResource:
        entry = self._rewrite(
            Action.REPO_CHANGE, name, lambda: self.registry.replace(name, doc, if_match)
        )
        return self._resource(entry)

    def patch_repo(
        self, name: str, patch: Mapping[str, Any], if_match: str | None = None
    ) -> RepoResource:
        """RFC 7396 merge patch of the repo file, keeping its comments and style."""
        action = patch_action(patch)
        pinned = patch.get("pins") if action in (Action.PIN, Action.UNPIN) else None
        entry = self._rewrite(
            action, name, lambda: self.registry.patch(name, patch, if_match), pins=pinned
        )
        return self._resource(entry)

    def set_suspended(self, name: str, suspended: bool) -> RepoResource:
        return self.patch_repo(name, {"suspend": True if suspended else None})

    def delete_repo(
        self, name: str, purge_data: bool = False, if_match: str | None = None
    ) -> DeleteResult:
        """Unregister a repo: its code servers stop; its data stays unless purge_data."""
        with self._audited(Action.REPO_REMOVE, repository=name) as note:
            note.target = self._repo_file(name)
            spec = self.registry.delete(name, if_match)
            self._changed()
            removed, notes = self.registry.purge_data(spec) if purge_data else ([], [])
            note.detail = detail_json(purge_data=purge_data, purged=len(removed) or None)
        return DeleteResult(name=spec.name, purged=purge_data, purged_paths=removed, notes=notes)

    def sync_repo(self, name: str, env: str | None = None, wait: bool = True) -> SyncResult:
        """Sync the repo's locations now (fetch, install, load check, publish)."""
        with self._audited(Action.REPO_SYNC, repository=name, environment=env) as note:
            self.registry.get(name)
            self.registry.check_env(env)
            outcomes = self.controller.sync(name, env, wait)
            self._refreshed()
            note.detail = detail_json(
                wait=wait,
                commits={o.location: o.commit for o in outcomes} or None,
                failed=[o.location for o in outcomes if o.error] or None,
            )
        return SyncResult(repo=name, outcomes=outcomes)

    def log_paths(self, name: str, env: str | None) -> dict[str, Path]:
        """The code-server logs of the repo's locations (in `env` only, when given)."""
        entry = self.registry.get(name)
        self.registry.check_env(env)
        locations = self.registry.locations_in(entry.spec, env)
        if not locations:
            raise NotFound(f"repo {name!r} has no location in environment {env!r}")
        return {loc: self.layout.log(loc) for loc in locations}

    def tail_logs(self, name: str, env: str | None, lines: int) -> bytes:
        return tail_many(self.log_paths(name, env), lines)[0]

    # ---- locations and environments ---------------------------------------------------
    def locations(self) -> builtins.list[LocationStatus]:
        """The status of every location, in fleet order."""
        return self.controller.statuses()

    def location(self, name: str) -> LocationStatus:
        for status in self.controller.statuses():
            if status.location == name:
                return status
        raise ControlError(f"unknown location {name!r}: `dagfleet status` lists them", 404)

    # ---- publish history, rollback and pins (service/history.py, service/rollback.py) ---
    def history(
        self, location: str, limit: int = 20, outcome: str | None = None
    ) -> builtins.list[PublishAttempt]:
        """The location's sync attempts, newest first (works with no fleet running)."""
        if self._readers.history is None:
            from dagfleet.service.history import HistoryReader

            self._readers.history = HistoryReader(self.registry, self.layout)
        return self._readers.history.read(location, limit, outcome)

    def rollback(self, location: str, to: str | None = None) -> pins.PinResult:
        """Pin the location's (repo, env) to `to` (default: the commit before) and serve it."""
        with self._audited(Action.ROLLBACK, location=location) as note:
            result = pins.rollback(self, location, to)
            _noted(note, result, result.pin)
        return result

    def unpin(self, location: str) -> pins.PinResult:
        """Follow the branch again in the location's (repo, env), synced now."""
        with self._audited(Action.UNPIN, location=location) as note:
            result = pins.unpin(self, location)
            _noted(note, result, result.previous_pin)
        return result

    # ---- the audit log (dagfleet.audit, service/audit.py) ----------------------------
    def audit(
        self,
        actor: str | None = None,
        action: str | None = None,
        location: str | None = None,
        since: str | None = None,
        limit: int = 100,
        before: int | None = None,
    ) -> builtins.list[AuditEntry]:
        """Audit entries, newest first, matching every filter given (400 for a bad one)."""
        try:
            query = AuditQuery.of(actor, action, location, since, limit, before)
        except ValueError as exc:
            raise ControlError(str(exc), 400) from None
        return self.audit_log.read(query)

    def fleet_log_paths(self, source: str | None) -> dict[str, Path]:
        """dagfleet's, the webserver's, the daemon's or a location's log; all when None."""
        names = [loc.name for loc in self.controller.fleet().locations()]
        return fleet_log_paths(self.layout, names, source)

    def fleet_logs(self, source: str | None, lines: int) -> bytes:
        return tail_many(self.fleet_log_paths(source), lines)[0]

    def environments(self) -> builtins.list[EnvironmentOut]:
        fleet = self.registry.fleet_spec()
        repos = [e.spec for e in self.registry.list()]
        return [
            EnvironmentOut(
                name=env.name,
                branch=env.branch,
                debug=env.debug,
                playground=env.playground,
                variables=sorted(env.env),
                locations=[name for r in repos for name in r.location_names(env.name)]
                + ([f"playground-{env.name}"] if env.playground else []),
            )
            for env in fleet.environments
        ]

    # ---- promotion and pushes ---------------------------------------------------------
    def promote(self, request: PromoteRequest) -> PromoteOutcome:
        """Move target's branch to the commit live and Ready in source, and push it."""
        with self._audited(
            Action.PROMOTE, repository=request.repo, environment=request.target
        ) as note:
            self.registry.get(request.repo)
            outcome = self.controller.promote(
                request.repo, request.source, request.target, request.merge
            )
            self._refreshed()
            note.target = outcome.commit
            note.detail = detail_json(
                source=request.source,
                target=request.target,
                branch=outcome.target_branch,
                merged=outcome.merged,
                previous=outcome.previous,
            )
        return outcome

    def push_received(self, git_url: str, branch: str) -> builtins.list[str]:
        """A webhook reported a push: sync the locations following that branch.

        Audited as a sync when some location follows the branch (the API binds the
        webhook's actor with `acting`).
        """
        repo = next((e.spec.name for e in self.registry.list() if e.spec.git_url == git_url), None)
        with self._audited(Action.REPO_SYNC, repository=repo, target=branch) as note:
            hit = self.controller.request_sync_for_push(git_url, branch)
            note.skip = not hit
            note.location = hit[0] if len(hit) == 1 else None
            note.detail = detail_json(push=branch, locations=hit)
        return hit

    # ---- playground -------------------------------------------------------------------
    def playground(self, env: str) -> PlaygroundFiles:
        """The playground files of `env`; refused unless the environment has a playground."""
        check_environment(self.registry.fleet_spec(), env)
        return AuditedPlayground(env, self.layout.playground(env), self)

    def playground_changed(self, env: str) -> None:
        self.controller.playground_changed(env)
        self._refreshed()

    # ---- alerts (dagfleet.alerts) ------------------------------------------------------
    def alerts(self) -> AlertsReport:
        """Alert channels (delivery health, queue) and open episodes, as the engine of the
        running fleet last wrote them; `running` is False when no fleet runs."""
        return alerts_report.read(self.layout)


def _noted(note: Note, result: pins.PinResult, commit: str | None) -> None:
    note.repository, note.environment, note.target = result.repo, result.env, commit
    note.detail = detail_json(
        previous_pin=result.previous_pin,
        changed=result.changed,
        validated=result.validated or None,
        running=result.running,
        live=result.live,
        locations=result.locations if len(result.locations) > 1 else None,
    )


@dataclass(frozen=True)
class AuditedPlayground(PlaygroundFiles):
    """Playground files whose writes and deletes are recorded for the service's actor."""

    service: FleetService = field(compare=False, repr=False)

    def write(self, name: str, data: bytes) -> PlaygroundWrite:
        with self.service._audited(
            Action.PLAYGROUND_PUSH, location=self.location, environment=self.env, target=name
        ) as note:
            written = super().write(name, data)
            note.detail = detail_json(
                sha256=written.file.sha256, size=written.file.size, created=written.created
            )
        return written

    def delete(self, name: str) -> PlaygroundDelete:
        with self.service._audited(
            Action.PLAYGROUND_REMOVE, location=self.location, environment=self.env, target=name
        ):
            return super().delete(name)
