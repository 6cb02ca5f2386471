"""The publish history: a real location loop's attempts are recorded in SQLite and in the
real PostgreSQL, survive a restart (read back through new store objects), and the
service reads them with no fleet running."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from dagfleet.control import ControlError
from dagfleet.events import Attempt, Event, Kind, Outcome
from dagfleet.history.models import PublishAttempt
from dagfleet.history.recorder import HistoryRecorder
from dagfleet.history.store import HistoryStore, database_url, open_store
from dagfleet.layout import Layout
from dagfleet.offline import OfflineController
from dagfleet.reconcile.location import LocationLoop
from dagfleet.service.fleet import FleetService
from dagfleet.service.identity import fleet_id
from dagfleet.spec import load_fleet
from tests.support.fleetproc import write_fleet
from tests.support.gitrepo import CodeRepo
from tests.support.runtime import idle_runtime

pytestmark = [pytest.mark.integration]


def _pg_fleet(tmp_path: Path, code_repo: CodeRepo, database: str) -> Path:
    return write_fleet(
        tmp_path / "fleet",
        {"demo": {"git_url": code_repo.url, "module_name": "demo.definitions"}},
        environments=[{"name": "A", "branch": "A"}],
        instance={"postgres": {"db": database}},
    )


@pytest.mark.slow
def test_attempts_are_recorded_in_sqlite_and_postgres_and_survive_a_restart(
    code_repo: CodeRepo, tmp_path: Path, database: str
) -> None:
    fleet_dir = _pg_fleet(tmp_path, code_repo, database)
    layout = Layout.for_fleet(fleet_dir)
    fleet = load_fleet(fleet_dir)
    ident = fleet_id(layout)
    pg_url = database_url(fleet.spec, layout, {})
    assert pg_url.get_backend_name() == "postgresql" and pg_url.database == database
    sqlite_url = f"sqlite:///{layout.root / 'history.db'}"
    recorders = [
        HistoryRecorder(HistoryStore(pg_url), ident).start(),
        HistoryRecorder(HistoryStore(sqlite_url), ident).start(),
    ]
    reconciler = idle_runtime(fleet_dir)
    for recorder in recorders:
        reconciler.ctx.events.subscribe(recorder)
    (spec,) = reconciler.ctx.fleet.locations()
    loop = LocationLoop(reconciler.ctx, spec, None)
    try:
        first = loop.sync_once(force=True)
        assert first.error is None, first.error
        loop.sync_once()  # the same commit again: not an attempt, nothing recorded
        broken = code_repo.commit(
            {"demo/definitions.py": "raise ImportError('no such thing')\n"}, "break it"
        )
        code_repo.push("A")
        assert loop.sync_once().reason == "DefinitionsInvalid"
    finally:
        loop.stop()
        reconciler.ctx.stop_servers(grace=2.0)
        for recorder in recorders:
            recorder.close()  # what `dagfleet up` does on stop: flush

    for url in (pg_url, sqlite_url):
        store = HistoryStore(url)  # a restart: nothing shared with the recorders' stores
        try:
            failed, published = store.recent(ident, "demo-A", 10)
        finally:
            store.close()
        assert published.outcome == "published" and published.commit == first.commit
        assert published.author == "test" and published.subject == "initial"
        assert [s.step for s in published.steps] == [
            "fetch",
            "checkout",
            "discover",
            "install",
            "build",
            "environment",
            "load",
        ]
        assert published.seconds > 0 and published.forced
        assert failed.outcome == "failed" and failed.commit == broken
        assert failed.reason == "DefinitionsInvalid" and not failed.transient
        assert failed.message and "ImportError" in failed.message
        assert failed.previous == first.commit and failed.subject == "break it"

    # The service reads the instance's database (PostgreSQL here) with no fleet running.
    service = FleetService(fleet_dir, OfflineController(fleet_dir))
    shown = service.history("demo-A", limit=1)
    assert [a.commit for a in shown] == [broken]
    assert [a.commit for a in service.history("demo-A", 5, outcome="published")] == [first.commit]


def _attempt(location: str, commit: str, outcome: Outcome = Outcome.PUBLISHED) -> Event:
    attempt = Attempt(
        location=location,
        repo="demo",
        env="A",
        commit=commit,
        previous=None,
        started="2026-01-01T00:00:00+00:00",
        finished="2026-01-01T00:00:05+00:00",
        outcome=outcome,
        steps=(("fetch", 0.5), ("load", 4.5)),
    )
    return Event(Kind.ATTEMPT, location, "demo", "A", commit, attempt=attempt)


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[HistoryStore]:
    store = HistoryStore(f"sqlite:///{tmp_path / 'state' / 'history.db'}")
    yield store
    store.close()


def test_recorder_keeps_attempts_not_polls_and_scopes_them_by_fleet(
    sqlite_store: HistoryStore,
) -> None:
    ours = HistoryRecorder(sqlite_store, "fleet-1").start()
    theirs = HistoryRecorder(HistoryStore(sqlite_store.url), "fleet-2").start()
    ours(_attempt("demo-A", "a" * 40))
    ours(_attempt("demo-A", "a" * 40, Outcome.UNCHANGED))
    ours(Event(Kind.CRASHED, "demo-A", "demo", "A", "a" * 40))
    ours(_attempt("demo-A", "b" * 40, Outcome.FAILED))
    theirs(_attempt("demo-A", "c" * 40))
    ours.close()
    theirs.close()
    store = HistoryStore(sqlite_store.url)
    assert [a.commit for a in store.recent("fleet-1", "demo-A", 10)] == ["b" * 40, "a" * 40]
    assert [a.commit for a in store.recent("fleet-2", "demo-A", 10)] == ["c" * 40]
    (only,) = store.recent("fleet-1", "demo-A", 10, outcome="published")
    assert only == PublishAttempt.of(_attempt("demo-A", "a" * 40).attempt)  # type: ignore[arg-type]
    store.close()


def test_reading_creates_nothing_and_unknown_locations_are_404(
    code_repo: CodeRepo, tmp_path: Path
) -> None:
    fleet_dir = write_fleet(tmp_path / "fleet", {"demo": {"git_url": code_repo.url}})
    service = FleetService(fleet_dir, OfflineController(fleet_dir))
    assert service.history("demo-A") == []
    assert not (fleet_dir / ".dagfleet" / "history.db").exists()
    assert not (fleet_dir / ".dagfleet" / "fleet-id").exists()
    with pytest.raises(ControlError) as err:
        service.history("nope-A")
    assert err.value.status_code == 404 and "dagfleet status" in str(err.value)


def test_database_is_the_instances(tmp_path: Path, code_repo: CodeRepo) -> None:
    """fleet.yaml's postgres first, then DAGSTER_POSTGRES_*, else SQLite in the state dir."""
    fleet_dir = write_fleet(tmp_path / "fleet", {"demo": {"git_url": code_repo.url}})
    layout = Layout.for_fleet(fleet_dir)
    spec = load_fleet(fleet_dir).spec
    assert database_url(spec, layout, {}).database == str(layout.root / "history.db")
    env = {
        "DAGSTER_POSTGRES_USER": "u",
        "DAGSTER_POSTGRES_PASSWORD": "p@ss",
        "DAGSTER_POSTGRES_HOST": "db.example",
        "DAGSTER_POSTGRES_DB": "dagster",
    }
    url = database_url(spec, layout, env)
    assert (url.username, url.password, url.host, url.port, url.database) == (
        "u",
        "p@ss",
        "db.example",
        5432,
        "dagster",
    )
    assert "p@ss" not in open_store(spec, layout, env).where()
