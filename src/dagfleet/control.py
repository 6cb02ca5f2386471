"""The contract between the front doors (REST API, CLI) and the runtime that acts.

The API and CLI never drive git or processes themselves: they edit the fleet
files through `dagfleet.registry` and ask a `Controller` to act. `dagfleet up`
provides the live controller; without a running fleet, the CLI uses an offline
one that only edits files and reads the last written status.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from dagfleet.spec import Fleet
from dagfleet.status import LocationStatus


@dataclass(frozen=True)
class SyncOutcome:
    """What one sync of one location did (git-sync's (changed, sha, error))."""

    location: str
    changed: bool
    commit: str | None
    previous: str | None = None
    error: str | None = None
    reason: str | None = None


@dataclass(frozen=True)
class PromoteOutcome:
    repo: str
    source_env: str
    target_env: str
    commit: str
    target_branch: str
    merged: bool = False
    previous: str | None = None
    notes: list[str] = field(default_factory=list)


class StartRefused(Exception):
    """`dagfleet up` refuses to start (an unsafe API bind, a fleet already running here)."""


class ControlError(Exception):
    """A request the runtime refuses, with a message meant for the user."""

    def __init__(self, message: str, status_code: int = 409) -> None:
        super().__init__(message)
        self.status_code = status_code


class Controller(Protocol):
    def fleet(self) -> Fleet:
        """The fleet as last loaded from disk."""
        ...

    def registry_changed(self) -> None:
        """The fleet files changed: reload them and reconcile now, without waiting."""
        ...

    def statuses(self) -> list[LocationStatus]:
        """The status of every location, in fleet order."""
        ...

    def sync(self, repo: str | None, env: str | None, wait: bool) -> list[SyncOutcome]:
        """Sync matching locations now; with wait, return once each sync has finished."""
        ...

    def request_sync_for_push(self, git_url: str, branch: str) -> list[str]:
        """A webhook reported a push: sync locations following that branch; returns them."""
        ...

    def playground_changed(self, env: str) -> None:
        """Files in an environment's playground changed: serve them now."""
        ...

    def promote(self, repo: str, source: str, target: str, merge: bool) -> PromoteOutcome:
        """Move target's branch to the commit live and Ready in source, and push it."""
        ...
