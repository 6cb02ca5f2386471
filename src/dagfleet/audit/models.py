"""What one audit entry says, and the pure rules around it: times, filters, short details.

An `AuditEntry` is who (actor, via, client address) did what (action, outcome,
target, detail), where (location, repository, environment) and when (`at`, UTC).
Times are kept in one fixed-width form (`2026-12-03T11:40:52.123456+00:00`) so
the store can compare them as text; `parse_since` turns what a user types
(`2h`, `7d`, a date, an ISO time) into that form. No I/O here.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field, field_validator

MAX_DETAIL = 2000  # characters of `detail` kept; longer text is cut with an ellipsis
MAX_LIMIT = 1000  # entries one query returns at most


class Via(StrEnum):
    """How the actor reached dagfleet."""

    PASSWORD = "password"  # a front-door session after a password login
    TOKEN = "token"  # an API or front-door bearer token
    OIDC = "oidc"  # a front-door session after single sign-on
    LOOPBACK = "loopback"  # no identity configured, on this machine
    OFFLINE = "offline"  # the CLI on the fleet files, no fleet running (the OS user)
    WEBHOOK = "webhook"  # a signed push webhook


class Action(StrEnum):
    RUN_LAUNCH = "run.launch"
    RUN_REEXECUTE = "run.reexecute"
    BACKFILL_LAUNCH = "backfill.launch"
    RUN_TERMINATE = "run.terminate"
    RUN_DELETE = "run.delete"
    ASSETS_WIPE = "assets.wipe"
    SCHEDULE_START = "schedule.start"
    SCHEDULE_STOP = "schedule.stop"
    SENSOR_START = "sensor.start"
    SENSOR_STOP = "sensor.stop"
    LOCATION_RELOAD = "location.reload"
    REPO_ADD = "repo.add"
    REPO_CHANGE = "repo.change"
    REPO_REMOVE = "repo.remove"
    REPO_SUSPEND = "repo.suspend"
    REPO_RESUME = "repo.resume"
    REPO_SYNC = "repo.sync"
    PROMOTE = "promote"
    ROLLBACK = "rollback"
    PIN = "pin"
    UNPIN = "unpin"
    PLAYGROUND_PUSH = "playground.push"
    PLAYGROUND_REMOVE = "playground.remove"
    GRAPHQL_OTHER = "graphql.other"  # any other GraphQL mutation; detail names the field


class Outcome(StrEnum):
    ALLOWED = "allowed"  # done (for a launch: let through the front door)
    DENIED = "denied"  # refused for lack of a role
    FAILED = "failed"  # allowed, but the operation raised; detail has the error's first line


@dataclass(frozen=True)
class Actor:
    """Who asks: a name, how they came in, and their address when over the network."""

    name: str
    via: Via
    client: str | None = None


def utc_now() -> str:
    return format_at(datetime.now(UTC))


def format_at(moment: datetime) -> str:
    """The one stored form of a time: UTC, microseconds, `+00:00` (sorts as text)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def first_line(error: BaseException | str) -> str:
    """The first non-empty line of an error (its type's name when it has no message)."""
    text = str(error)
    for line in text.splitlines():
        if line.strip():
            return short(line.strip())
    return type(error).__name__ if isinstance(error, BaseException) else ""


def short(text: str, limit: int = MAX_DETAIL) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def detail_json(**fields: Any) -> str:
    """A compact JSON detail of the fields that are not None (keys in the order given)."""
    return short(json.dumps({k: v for k, v in fields.items() if v is not None}, default=str))


class AuditEntry(BaseModel):
    """One audited action. `id` is set by the store; `fleet` by the writer when left empty."""

    id: int | None = None
    at: str = Field(default_factory=utc_now, description="UTC, ISO 8601")
    fleet: str = ""
    actor: str
    via: Via
    action: Action
    outcome: Outcome = Outcome.ALLOWED
    location: str | None = None
    repository: str | None = None
    environment: str | None = None
    target: str | None = Field(None, description="What was acted on: run id, commit, file...")
    detail: str | None = Field(None, description="Short text or JSON")
    client: str | None = Field(None, description="The client's address, when over the network")

    @field_validator("at")
    @classmethod
    def _utc(cls, value: str) -> str:
        try:
            return format_at(datetime.fromisoformat(value))
        except ValueError:
            raise ValueError(f"{value!r} is not an ISO 8601 time") from None

    @field_validator("detail")
    @classmethod
    def _short(cls, value: str | None) -> str | None:
        return None if value is None else short(value)


_RELATIVE = re.compile(r"^(\d+)\s*([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(text: str, now: datetime | None = None) -> str:
    """`since` as stored time: `30m`, `2h`, `7d`, `1w` ago, a date or an ISO time (UTC if
    no offset). Raises ValueError with the accepted forms."""
    value = text.strip()
    match = _RELATIVE.match(value)
    try:
        if match:
            ago = timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
            return format_at((now or datetime.now(UTC)) - ago)
        return format_at(datetime.fromisoformat(value.replace("Z", "+00:00")))
    except (ValueError, OverflowError):
        raise ValueError(
            f"since: {text!r} is not a time: give an age such as 30m, 2h, 7d or 1w, "
            "a date (2026-12-01) or an ISO time (2026-12-01T09:00:00+00:00)"
        ) from None


class AuditQuery(BaseModel):
    """The filters of one read, checked: newest first, `limit` entries, ids below `before`."""

    actor: str | None = None
    action: Action | None = None
    location: str | None = None
    since: str | None = None  # stored form (parse_since)
    limit: int = 100
    before: int | None = None

    @classmethod
    def of(
        cls,
        actor: str | None = None,
        action: str | None = None,
        location: str | None = None,
        since: str | None = None,
        limit: int = 100,
        before: int | None = None,
        now: datetime | None = None,
    ) -> AuditQuery:
        """From what a user gave; raises ValueError naming the filter and what it takes."""
        if not 1 <= limit <= MAX_LIMIT:
            raise ValueError(f"limit: {limit} is out of range: give 1-{MAX_LIMIT}")
        if before is not None and before < 1:
            raise ValueError(f"before: {before} is not an entry id: ids start at 1")
        for name, text in (("actor", actor), ("location", location), ("since", since)):
            if text is not None and any(ord(ch) < 32 for ch in text):
                raise ValueError(f"{name}: {text!r} has control characters: give plain text")
        known = {a.value for a in Action}
        if action is not None and action not in known:
            raise ValueError(
                f"action: {action!r} is not an audited action: give one of "
                + ", ".join(sorted(known))
            )
        return cls(
            actor=actor or None,
            action=Action(action) if action else None,
            location=location or None,
            since=parse_since(since, now) if since else None,
            limit=limit,
            before=before,
        )

    def matches(self, entry: AuditEntry) -> bool:
        """The same filters as the store's query, on one entry (for tests and in-memory use)."""
        return (
            (self.actor is None or entry.actor == self.actor)
            and (self.action is None or entry.action == self.action)
            and (self.location is None or entry.location == self.location)
            and (self.since is None or entry.at >= self.since)
            and (self.before is None or (entry.id is not None and entry.id < self.before))
        )
