"""The audit log's pure parts: stored times, `since`, the query's filters, entry details,
and how the service names a repo-file change."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from dagfleet.audit.models import (
    MAX_DETAIL,
    Action,
    AuditEntry,
    AuditQuery,
    Outcome,
    Via,
    first_line,
    format_at,
    parse_since,
)
from dagfleet.service.audit import changed_fields, patch_action

NOW = datetime(2026, 12, 3, 12, 0, 0, tzinfo=UTC)


def test_stored_times_are_fixed_width_utc_and_sort_as_text() -> None:
    moments = [
        datetime(2026, 12, 3, 9, 0, tzinfo=UTC),
        datetime(2026, 12, 3, 11, 30, 0, 5, tzinfo=UTC),
        datetime(2026, 12, 3, 13, 0, tzinfo=timezone(timedelta(hours=2))),  # 11:00 UTC
        datetime(2026, 12, 3, 10, 0),  # naive: taken as UTC
    ]
    stored = [format_at(m) for m in moments]
    assert {len(s) for s in stored} == {len("2026-12-03T09:00:00.000000+00:00")}
    assert all(s.endswith("+00:00") for s in stored)
    assert sorted(stored) == [format_at(m) for m in sorted(moments, key=_utc)]


def _utc(m: datetime) -> datetime:
    return m if m.tzinfo else m.replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("30m", NOW - timedelta(minutes=30)),
        ("2h", NOW - timedelta(hours=2)),
        ("7d", NOW - timedelta(days=7)),
        ("1w", NOW - timedelta(weeks=1)),
        ("45s", NOW - timedelta(seconds=45)),
        ("2026-12-01", datetime(2026, 12, 1, tzinfo=UTC)),
        ("2026-12-01T09:00:00Z", datetime(2026, 12, 1, 9, tzinfo=UTC)),
        ("2026-12-01T10:00:00+01:00", datetime(2026, 12, 1, 9, tzinfo=UTC)),
    ],
)
def test_since_takes_ages_dates_and_iso_times(text: str, want: datetime) -> None:
    assert parse_since(text, NOW) == format_at(want)


@pytest.mark.parametrize("text", ["yesterday", "2h ago", "-1d", "", "99999999999w", "1y"])
def test_since_refuses_anything_else_naming_the_forms(text: str) -> None:
    with pytest.raises(ValueError, match=r"since: .* is not a time: give an age such as 30m"):
        parse_since(text, NOW)


def test_entry_defaults_and_normalises() -> None:
    entry = AuditEntry(actor="ada", via=Via.TOKEN, action=Action.PROMOTE)
    assert entry.outcome == Outcome.ALLOWED and entry.id is None and entry.fleet == ""
    assert datetime.fromisoformat(entry.at).tzinfo is not None
    given = AuditEntry(
        actor="ada",
        via="password",
        action="run.launch",
        at="2026-12-03T13:00:00+01:00",
        detail="x" * (MAX_DETAIL + 50),
    )
    assert given.at == "2026-12-03T12:00:00.000000+00:00"
    assert given.action is Action.RUN_LAUNCH and given.via is Via.PASSWORD
    assert given.detail is not None and len(given.detail) == MAX_DETAIL
    assert given.detail.endswith("…")
    with pytest.raises(ValidationError, match="not an ISO 8601 time"):
        AuditEntry(actor="ada", via=Via.TOKEN, action=Action.PROMOTE, at="noon")
    with pytest.raises(ValidationError):
        AuditEntry(actor="ada", via="carrier-pigeon", action=Action.PROMOTE)


def test_the_actions_are_the_issues_list() -> None:
    assert {a.value for a in Action} == {
        "run.launch", "run.reexecute", "backfill.launch", "run.terminate", "run.delete",
        "assets.wipe", "schedule.start", "schedule.stop", "sensor.start", "sensor.stop",
        "location.reload", "repo.add", "repo.change", "repo.remove", "repo.suspend",
        "repo.resume", "repo.sync", "promote", "rollback", "pin", "unpin",
        "playground.push", "playground.remove", "graphql.other",
    }  # fmt: skip


def test_first_line_of_an_error() -> None:
    assert first_line(RuntimeError("\n  repos/x.yaml: branch: not a string\nmore")) == (
        "repos/x.yaml: branch: not a string"
    )
    assert first_line(KeyError()) == "KeyError"


def test_query_checks_each_filter_by_name() -> None:
    q = AuditQuery.of("ada", "promote", "sales-A", "2h", 10, 50, now=NOW)
    assert (q.actor, q.action, q.location, q.limit, q.before) == (
        "ada",
        Action.PROMOTE,
        "sales-A",
        10,
        50,
    )
    assert q.since == format_at(NOW - timedelta(hours=2))
    assert AuditQuery.of(actor="", location="").actor is None  # empty means no filter
    for bad, said in [
        ({"limit": 0}, "limit: 0 is out of range: give 1-1000"),
        ({"limit": 1001}, "limit: 1001"),
        ({"before": 0}, "before: 0 is not an entry id"),
        ({"action": "deploy"}, "action: 'deploy' is not an audited action: give one of"),
        ({"actor": "a\x00b"}, "actor: 'a\\x00b' has control characters"),
        ({"since": "soon"}, "since: 'soon' is not a time"),
    ]:
        with pytest.raises(ValueError) as err:
            AuditQuery.of(**bad)  # type: ignore[arg-type]
        assert said in str(err.value)


def test_query_matches_like_the_store() -> None:
    def entry(i: int, actor: str, action: Action, location: str | None, at: str) -> AuditEntry:
        return AuditEntry(id=i, actor=actor, via=Via.TOKEN, action=action, location=location, at=at)

    entries = [
        entry(1, "ada", Action.REPO_ADD, None, "2026-12-01T00:00:00+00:00"),
        entry(2, "bob", Action.ROLLBACK, "sales-A", "2026-12-03T11:00:00+00:00"),
        entry(3, "ada", Action.ROLLBACK, "sales-A", "2026-12-03T11:30:00+00:00"),
        entry(4, "ada", Action.ROLLBACK, "sales-B", "2026-12-03T11:45:00+00:00"),
    ]

    def ids(**filters: object) -> list[int | None]:
        q = AuditQuery.of(now=NOW, **filters)
        return [e.id for e in entries if q.matches(e)]

    assert ids() == [1, 2, 3, 4]
    assert ids(actor="ada") == [1, 3, 4]
    assert ids(action="rollback", location="sales-A") == [2, 3]
    assert ids(since="1h") == [2, 3, 4]
    assert ids(since="20m", actor="ada") == [4]
    assert ids(before=3) == [1, 2]


@pytest.mark.parametrize(
    ("patch", "action"),
    [
        ({"suspend": True}, Action.REPO_SUSPEND),
        ({"suspend": None}, Action.REPO_RESUME),
        ({"suspend": False}, Action.REPO_RESUME),
        ({"pins": {"A": "a" * 40}}, Action.PIN),
        ({"pins": {"A": None}}, Action.UNPIN),
        ({"pins": None}, Action.UNPIN),
        ({"branch": "main"}, Action.REPO_CHANGE),
        ({"branch": "main", "suspend": True}, Action.REPO_CHANGE),
        ({}, Action.REPO_CHANGE),
    ],
)
def test_a_patch_is_named_by_what_it_does(patch: dict[str, object], action: Action) -> None:
    assert patch_action(patch) is action


def test_changed_fields_are_names_only() -> None:
    before = {"name": "s", "branch": "main", "env": {"TOKEN": "old-secret"}}
    after = {"name": "s", "branch": "dev", "env": {"TOKEN": "new-secret"}, "suspend": True}
    assert changed_fields(before, after) == ["branch", "env", "suspend"]
    assert changed_fields(before, before) == []
