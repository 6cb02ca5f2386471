"""`FleetService`: every operation on a fleet, for whichever front door asks.

The REST API's routes and the CLI (offline, against the fleet files) call these
methods and nothing else: validation, registry writes and what to tell the
runtime live here once. The runtime is reached through a `Controller`: the live
one from `dagfleet up`, or the offline one that only reads the last statuses.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dagfleet.alerts import report as alerts_report
from dagfleet.alerts.model import AlertsReport
from dagfleet.control import ControlError, Controller, PromoteOutcome
from dagfleet.layout import Layout
from dagfleet.registry import NotFound, Registry, RepoEntry
from dagfleet.service import rollback as pins
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
from dagfleet.service.playground import PlaygroundFiles, check_environment
from dagfleet.spec import FleetSpec
from dagfleet.status import LocationStatus

if TYPE_CHECKING:
    from dagfleet.history.models import PublishAttempt
    from dagfleet.service.history import HistoryReader


class FleetService:
    """One fleet directory's repos, locations, promotion, logs and playground files."""

    def __init__(self, fleet_dir: Path, controller: Controller) -> None:
        self.fleet_dir = fleet_dir.resolve()
        self.registry = Registry(self.fleet_dir)
        self.layout = Layout.for_fleet(self.fleet_dir)
        self.controller = controller
        self._history: HistoryReader | None = None  # opened on first use (SQLAlchemy)
        # Called after every change the runtime must see (the API drops cached statuses).
        self.listeners: builtins.list[Callable[[], None]] = []

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
        entry = self.registry.create(doc)
        self._changed()
        return self._resource(entry)

    def replace_repo(
        self, name: str, doc: Mapping[str, Any], if_match: str | None = None
    ) -> RepoResource:
        entry = self.registry.replace(name, doc, if_match)
        self._changed()
        return self._resource(entry)

    def patch_repo(
        self, name: str, patch: Mapping[str, Any], if_match: str | None = None
    ) -> RepoResource:
        """RFC 7396 merge patch of the repo file, keeping its comments and style."""
        entry = self.registry.patch(name, patch, if_match)
        self._changed()
        return self._resource(entry)

    def set_suspended(self, name: str, suspended: bool) -> RepoResource:
        return self.patch_repo(name, {"suspend": True if suspended else None})

    def delete_repo(
        self, name: str, purge_data: bool = False, if_match: str | None = None
    ) -> DeleteResult:
        """Unregister a repo: its code servers stop; its data stays unless purge_data."""
        spec = self.registry.delete(name, if_match)
        self._changed()
        removed, notes = self.registry.purge_data(spec) if purge_data else ([], [])
        return DeleteResult(name=spec.name, purged=purge_data, purged_paths=removed, notes=notes)

    def sync_repo(self, name: str, env: str | None = None, wait: bool = True) -> SyncResult:
        """Sync the repo's locations now (fetch, install, load check, publish)."""
        self.registry.get(name)
        self.registry.check_env(env)
        outcomes = self.controller.sync(name, env, wait)
        self._refreshed()
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
        if self._history is None:
            from dagfleet.service.history import HistoryReader

            self._history = HistoryReader(self.registry, self.layout)
        return self._history.read(location, limit, outcome)

    def rollback(self, location: str, to: str | None = None) -> pins.PinResult:
        """Pin the location's (repo, env) to `to` (default: the commit before) and serve it."""
        return pins.rollback(self, location, to)

    def unpin(self, location: str) -> pins.PinResult:
        """Follow the branch again in the location's (repo, env), synced now."""
        return pins.unpin(self, location)

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
        self.registry.get(request.repo)
        outcome = self.controller.promote(
            request.repo, request.source, request.target, request.merge
        )
        self._refreshed()
        return outcome

    def push_received(self, git_url: str, branch: str) -> builtins.list[str]:
        """A webhook reported a push: sync the locations following that branch."""
        return self.controller.request_sync_for_push(git_url, branch)

    # ---- playground -------------------------------------------------------------------
    def playground(self, env: str) -> PlaygroundFiles:
        """The playground files of `env`; refused unless the environment has a playground."""
        check_environment(self.registry.fleet_spec(), env)
        return PlaygroundFiles(env, self.layout.playground(env))

    def playground_changed(self, env: str) -> None:
        self.controller.playground_changed(env)
        self._refreshed()

    # ---- alerts (dagfleet.alerts) ------------------------------------------------------
    def alerts(self) -> AlertsReport:
        """Alert channels (delivery health, queue) and open episodes, as the engine of the
        running fleet last wrote them; `running` is False when no fleet runs."""
        return alerts_report.read(self.layout)
