"""Rollback and unpin: serve an earlier commit now, recorded as a pin in the repo file.

A rollback is declarative: it writes `pins: {env: sha}` into `repos/<repo>.yaml`
(keeping the file's style, so the change reads as one block in review), then
forces a sync of that environment so the commit is served at once. A commit
that never went live in the location (no `published` attempt in its history)
must first pass the same pipeline and load check as `dagfleet validate`.

Pins are per (repo, environment): in a monorepo, every location of the repo in
that environment follows the pin, and the result says which.
"""

from __future__ import annotations

import builtins
import re
from typing import TYPE_CHECKING

from pydantic import BaseModel, field_validator

from dagfleet.control import ControlError, SyncOutcome
from dagfleet.spec import LocationSpec, load_fleet

if TYPE_CHECKING:
    from dagfleet.history.models import PublishAttempt
    from dagfleet.service.fleet import FleetService

# How far back a rollback looks for the commit to go back to, and for a commit given.
HISTORY_DEPTH = 1000
_SHA = re.compile(r"^[0-9a-fA-F]{7,40}$")


def check_commit(to: str) -> str | None:
    """Why `to` is not a commit SHA, or None. Tags and branches move: a rollback names a commit."""
    if _SHA.match(to):
        return None
    return f"{to!r} is not a commit SHA: give 7-40 hex digits (`dagfleet history` lists them)"


class RollbackRequest(BaseModel):
    to: str | None = None  # a commit SHA (7-40 hex digits); None: the one before the current

    @field_validator("to")
    @classmethod
    def _commit(cls, v: str | None) -> str | None:
        if v is None:
            return v
        problem = check_commit(v)
        if problem:
            raise ValueError(problem)
        return v


class PinResult(BaseModel):
    """What a rollback or unpin did: the pin written, and whether the environment serves it."""

    location: str
    repo: str
    env: str
    pin: str | None  # the commit pinned; None after unpin (the branch is followed)
    previous_pin: str | None
    locations: builtins.list[str]  # every location following the pin (several in a monorepo)
    repo_file: str
    changed: bool  # whether the repo file changed
    validated: bool = False  # the commit never loaded here and passed the load check first
    running: bool  # a fleet is running (else the pin waits for `dagfleet up`)
    live: bool  # every location in `locations` serves what it should now
    outcomes: builtins.list[SyncOutcome]
    notes: builtins.list[str] = []


def _location(service: FleetService, name: str) -> LocationSpec:
    for loc in load_fleet(service.fleet_dir).locations():
        if loc.name == name:
            if loc.playground:
                raise ControlError(
                    f"{name} serves playground files, not commits: nothing to roll back", 409
                )
            return loc
    raise ControlError(f"unknown location {name!r}: `dagfleet status` lists them", 404)


def _current_commit(service: FleetService, name: str) -> str | None:
    for status in service.controller.statuses():
        if status.location == name:
            return status.commit
    return None


def pick_previous(published: builtins.list[PublishAttempt], current: str | None) -> str | None:
    """The commit live before `current` first went live (`published` newest first).

    Going back from the first publish of the current commit (not its latest) means
    rolling back twice goes two steps back, not forth between the last two.
    """
    firsts = [i for i, a in enumerate(published) if a.commit == current]
    older = published
    if firsts:
        first = published[firsts[-1]]
        if first.previous and first.previous != current:
            return first.previous
        older = published[firsts[-1] + 1 :]
    for attempt in older:
        if attempt.commit and attempt.commit != current:
            return attempt.commit
    return None


def _matching(published: builtins.list[PublishAttempt], to: str) -> str | None:
    for attempt in published:
        if attempt.commit and attempt.commit.startswith(to.lower()):
            return attempt.commit
    return None


def _sync(
    service: FleetService, loc: LocationSpec, want: str | None
) -> tuple[bool, bool, builtins.list[SyncOutcome], builtins.list[str]]:
    """Force a sync of the pinned environment: (running, live, outcomes, notes)."""
    try:
        outcomes = service.sync_repo(loc.repo, loc.env, wait=True).outcomes
    except ControlError as exc:
        if exc.status_code != 503:
            raise
        return False, False, [], [f"{exc}: the repo file has the change; `dagfleet up` serves it"]
    live = bool(outcomes) and all(
        o.error is None and (want is None or o.commit == want) for o in outcomes
    )
    return True, live, outcomes, []


def rollback(service: FleetService, location: str, to: str | None) -> PinResult:
    """Pin the location's (repo, env) to `to` (or the commit before the current one)."""
    loc = _location(service, location)
    published = service.history(location, HISTORY_DEPTH, outcome="published")
    current = _current_commit(service, location)
    notes: builtins.list[str] = []
    validated = False
    if to is None:
        sha = pick_previous(published, current)
        if sha is None:
            raise ControlError(
                f"{location} has no earlier published commit in its history: "
                'give the commit with --to SHA (body {"to": sha})',
                409,
            )
    else:
        problem = check_commit(to)
        if problem:
            raise ControlError(f"--to: {problem}", 400)
        found = _matching(published, to)
        if found is None:
            sha = _load_check(service, loc, to)
            validated = True
            notes.append(f"{sha[:12]} never went live in {location}: it passed the load check")
        else:
            sha = found
    return _pin(service, loc, sha, validated, notes)


def _load_check(service: FleetService, loc: LocationSpec, to: str) -> str:
    """The same steps and load check as `dagfleet validate`, for commit `to`; its full SHA."""
    from dagfleet.reconcile.validate import validate_location

    fleet = load_fleet(service.fleet_dir)
    result = validate_location(fleet, service.layout, loc.model_copy(update={"pin": to}))
    if not result.ok or result.commit is None:
        raise ControlError(
            f"{to} never went live in {loc.name} and fails its load check "
            f"({result.reason}: {result.message}); nothing was pinned",
            409,
        )
    return result.commit


def _following(service: FleetService, loc: LocationSpec) -> builtins.list[str]:
    entry = service.registry.get(loc.repo)
    return service.registry.locations_in(entry.spec, loc.env)


def _repo_file(service: FleetService, repo: str) -> str:
    path = service.registry.path(repo)
    return str(path.relative_to(service.fleet_dir)) if path else f"repos/{repo}.yaml"


def _pin(
    service: FleetService, loc: LocationSpec, sha: str, validated: bool, notes: builtins.list[str]
) -> PinResult:
    before = service.registry.get(loc.repo).spec.pins.get(loc.env)
    changed = before != sha
    if changed:
        service.patch_repo(loc.repo, {"pins": {loc.env: sha}})
    following = _following(service, loc)
    if len(following) > 1:
        notes.append(
            f"pins are per repo and environment: {', '.join(following)} all follow this pin"
        )
    running, live, outcomes, more = _sync(service, loc, sha)
    return PinResult(
        location=loc.name,
        repo=loc.repo,
        env=loc.env,
        pin=sha,
        previous_pin=before,
        locations=following,
        repo_file=_repo_file(service, loc.repo),
        changed=changed,
        validated=validated,
        running=running,
        live=live,
        outcomes=outcomes,
        notes=notes + more,
    )


def unpin(service: FleetService, location: str) -> PinResult:
    """Remove the (repo, env) pin: the environment follows its branch again, synced now."""
    loc = _location(service, location)
    pins = service.registry.get(loc.repo).spec.pins
    before = pins.get(loc.env)
    notes: builtins.list[str] = []
    if before is None:
        notes.append(f"{location} was not pinned: it follows {loc.ref!r}")
    else:
        # The last pin takes the `pins` block with it, leaving no `pins: {}` behind.
        patch = {"pins": None} if set(pins) == {loc.env} else {"pins": {loc.env: None}}
        service.patch_repo(loc.repo, patch)
    following = _following(service, loc)
    if before is not None and len(following) > 1:
        notes.append(f"pins are per repo and environment: {', '.join(following)} follow {loc.ref}")
    running, live, outcomes, more = _sync(service, loc, None)
    return PinResult(
        location=loc.name,
        repo=loc.repo,
        env=loc.env,
        pin=None,
        previous_pin=before,
        locations=following,
        repo_file=_repo_file(service, loc.repo),
        changed=before is not None,
        running=running,
        live=live,
        outcomes=outcomes,
        notes=notes + more,
    )
