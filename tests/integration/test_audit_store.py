"""The audit log's store and writer on SQLite and on the real PostgreSQL (database `test`,
a fresh fleet id per test so parallel runs never see each other's rows), and the service
recording its own changes (offline, with the fleet files)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from dagfleet.audit.models import Action, Actor, AuditEntry, Outcome, Via, format_at
from dagfleet.audit.store import AuditStore, open_store
from dagfleet.audit.writer import AuditWriter
from dagfleet.control import ControlError
from dagfleet.history.store import database_url
from dagfleet.layout import Layout
from dagfleet.offline import OfflineController
from dagfleet.registry import NotFound
from dagfleet.service.audit import local_actor
from dagfleet.service.fleet import FleetService
from dagfleet.spec import load_fleet
from tests.integration.test_api_locations import C1, history_fleet

pytestmark = pytest.mark.integration
POSTGRES = "postgresql+psycopg2://postgres@127.0.0.1:5432/test"


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AuditStore]:
    url = f"sqlite:///{tmp_path / 'state' / 'history.db'}"
    made = AuditStore(url if request.param == "sqlite" else POSTGRES)
    yield made
    made.close()


def _fleet() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


def _entry(actor: str, action: Action, at: str, **more: str) -> AuditEntry:
    return AuditEntry(actor=actor, via=Via.TOKEN, action=action, at=at, **more)


def test_append_and_query_newest_first_with_every_filter(store: AuditStore) -> None:
    ours, theirs = _fleet(), _fleet()
    rows = [
        _entry("ada", Action.REPO_ADD, "2026-12-01T09:00:00+00:00", repository="sales"),
        _entry("bob", Action.ROLLBACK, "2026-12-02T09:00:00+00:00", location="sales-A"),
        _entry("ada", Action.RUN_LAUNCH, "2026-12-03T09:00:00+00:00", location="sales-A"),
        _entry("ada", Action.ROLLBACK, "2026-12-03T10:00:00+00:00", location="sales-B"),
    ]
    ids = [store.append(r.model_copy(update={"fleet": ours})) for r in rows]
    assert ids == sorted(ids) and len(set(ids)) == 4
    store.append(rows[0].model_copy(update={"fleet": theirs, "actor": "eve"}))

    def got(**filters: object) -> list[int | None]:
        return [e.id for e in store.query(ours, **filters)]

    assert got() == ids[::-1]
    assert got(actor="ada") == [ids[3], ids[2], ids[0]]
    assert got(action=Action.ROLLBACK) == [ids[3], ids[1]]
    assert got(action="rollback", location="sales-A") == [ids[1]]
    assert got(since=format_at(datetime(2026, 12, 3, tzinfo=UTC))) == [ids[3], ids[2]]
    assert got(limit=2) == [ids[3], ids[2]]
    assert got(before_id=ids[2], limit=1) == [ids[1]]  # the next page
    assert got(actor="eve") == []  # another fleet's rows stay apart
    assert [e.actor for e in store.query(theirs)] == ["eve"]
    back = store.query(ours, location="sales-A", action=Action.RUN_LAUNCH)[0]
    assert back == rows[2].model_copy(update={"fleet": ours, "id": ids[2]})


def test_an_entry_needs_its_fleet(store: AuditStore) -> None:
    with pytest.raises(ValueError, match="has no fleet id"):
        store.append(_entry("ada", Action.PROMOTE, "2026-12-01T00:00:00+00:00"))


def test_writer_queues_flushes_and_closes(store: AuditStore) -> None:
    fleet = _fleet()
    writer = AuditWriter(AuditStore(store.url), fleet).start()
    assert writer.running
    for i in range(25):
        writer.record(AuditEntry(actor=f"u{i}", via=Via.PASSWORD, action=Action.RUN_TERMINATE))
    assert writer.flush(10)
    assert [e.actor for e in store.query(fleet, limit=30)] == [f"u{i}" for i in range(24, -1, -1)]
    writer.record(AuditEntry(actor="last", via=Via.OIDC, action=Action.ASSETS_WIPE))
    writer.close()  # writes what is queued
    assert not writer.running
    assert store.query(fleet, limit=1)[0].actor == "last"


def test_reading_creates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "state" / "history.db"
    assert AuditStore(f"sqlite:///{path}").query("any") == []
    assert not path.exists()


def test_a_failing_database_is_retried_and_record_never_raises(tmp_path: Path) -> None:
    """The database's directory is a file at first (every write fails), then fixed."""
    blocker = tmp_path / "state"
    blocker.write_text("not a directory")
    store = AuditStore(f"sqlite:///{blocker / 'history.db'}")
    writer = AuditWriter(store, "fleet-1").start()
    writer.record(AuditEntry(actor="ada", via=Via.TOKEN, action=Action.RUN_LAUNCH))  # no raise
    assert not writer.flush(0.5)
    assert not AuditWriter(store, "fleet-1").record_now(
        AuditEntry(actor="bob", via=Via.OFFLINE, action=Action.REPO_ADD)
    )  # synchronous: logged, not raised
    blocker.unlink()
    blocker.mkdir()
    assert writer.flush(10)  # retried with backoff (1 s, then 2 s)
    writer.close()
    assert [e.actor for e in AuditStore(store.url).query("fleet-1")] == ["ada"]


def test_the_database_is_the_history_database(tmp_path: Path) -> None:
    fleet_dir = history_fleet(tmp_path)
    layout = Layout.for_fleet(fleet_dir)
    spec = load_fleet(fleet_dir).spec
    env = {"DAGSTER_POSTGRES_HOST": "db.example", "DAGSTER_POSTGRES_DB": "d"}
    for environ in ({}, env):
        assert open_store(spec, layout, environ).url == database_url(spec, layout, environ)


# ---- the service records its changes ---------------------------------------------------


def _service(fleet_dir: Path) -> FleetService:
    return FleetService(fleet_dir, OfflineController(fleet_dir))


def test_service_records_changes_for_its_actor(tmp_path: Path) -> None:
    fleet_dir = history_fleet(tmp_path)
    service = _service(fleet_dir)
    me = local_actor()
    service.create_repo({"name": "sales", "git_url": "https://git.example.com/sales.git"})
    service.patch_repo("sales", {"branch": "main"})
    service.set_suspended("sales", True)
    with pytest.raises(NotFound):
        service.patch_repo("nope", {"branch": "x"})
    with pytest.raises(ControlError):
        service.sync_repo("sales")  # no fleet running: 503, recorded as failed
    service.acting(Actor("ada", Via.TOKEN, "10.0.0.7")).delete_repo("sales")
    log = service.audit()
    assert [(e.actor, e.action, e.outcome) for e in log] == [
        ("ada", Action.REPO_REMOVE, Outcome.ALLOWED),
        (me.name, Action.REPO_SYNC, Outcome.FAILED),
        (me.name, Action.REPO_CHANGE, Outcome.FAILED),
        (me.name, Action.REPO_SUSPEND, Outcome.ALLOWED),
        (me.name, Action.REPO_CHANGE, Outcome.ALLOWED),
        (me.name, Action.REPO_ADD, Outcome.ALLOWED),
    ]
    remove, sync, missing, suspend, change, add = log
    assert remove.client == "10.0.0.7" and remove.via == Via.TOKEN
    assert add.via == Via.OFFLINE and add.client is None
    assert add.repository == "sales" and add.target == "repos/sales.yaml"
    assert "git.example.com/sales.git" in (add.detail or "")
    assert change.detail == '{"changed": ["branch"]}'
    assert suspend.detail == '{"changed": ["suspend"]}'
    assert missing.repository == "nope" and "nope" in (missing.detail or "")
    assert sync.detail is not None and "no running fleet" in sync.detail
    assert [e.action for e in service.audit(actor="ada")] == [Action.REPO_REMOVE]
    assert [e.id for e in service.audit(limit=2, before=add.id)] == []
    with pytest.raises(ControlError) as err:
        service.audit(since="later")
    assert err.value.status_code == 400


def test_a_rollback_is_one_entry_not_its_patch_and_sync(tmp_path: Path) -> None:
    fleet_dir = history_fleet(tmp_path)  # demo-A published C1 then C2
    service = _service(fleet_dir)
    result = service.rollback("demo-A")  # no fleet: the pin is written, not served
    assert result.pin == C1 and not result.running
    assert yaml.safe_load((fleet_dir / "repos" / "demo.yaml").read_text())["pins"] == {"A": C1}
    service.unpin("demo-A")
    (unpin, rollback) = service.audit()
    assert (rollback.action, rollback.location, rollback.repository, rollback.environment) == (
        Action.ROLLBACK,
        "demo-A",
        "demo",
        "A",
    )
    assert rollback.target == C1 and '"running": false' in (rollback.detail or "")
    assert unpin.action == Action.UNPIN and unpin.target == C1


def test_playground_writes_are_recorded(tmp_path: Path) -> None:
    fleet_dir = history_fleet(tmp_path)
    doc = yaml.safe_load((fleet_dir / "fleet.yaml").read_text())
    doc["environments"][0]["playground"] = True
    (fleet_dir / "fleet.yaml").write_text(yaml.safe_dump(doc))
    files = _service(fleet_dir).playground("A")
    files.write("my_assets.py", b"x = 1\n")
    files.delete("my_assets.py")
    with pytest.raises(ControlError):
        files.write("_bad.py", b"")
    bad, removed, pushed = _service(fleet_dir).audit()
    assert (pushed.action, pushed.location, pushed.environment, pushed.target) == (
        Action.PLAYGROUND_PUSH,
        "playground-A",
        "A",
        "my_assets.py",
    )
    assert '"created": true' in (pushed.detail or "")
    assert removed.action == Action.PLAYGROUND_REMOVE
    assert bad.outcome == Outcome.FAILED and "starts with '_'" in (bad.detail or "")
