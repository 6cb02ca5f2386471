"""The front door writes who launched, terminated or was refused, where, into the audit
log (SQLite here; the store's PostgreSQL side has its own tests)."""

from __future__ import annotations

from pathlib import Path

from dagfleet.audit.store import AuditStore
from dagfleet.audit.writer import AuditWriter
from tests.integration.test_frontdoor_matrix import launch, terminate
from tests.support.frontdoor import dagster_webserver, fleet_dir, front_door


def test_launches_terminations_and_refusals_are_audited(tmp_path: Path) -> None:
    store = AuditStore(f"sqlite:///{tmp_path / 'audit.db'}")
    writer = AuditWriter(store, "fleet-under-test").start()
    try:
        with (
            dagster_webserver(tmp_path / "dagster") as web,
            front_door(fleet_dir(tmp_path), web.url, audit=writer) as door,
        ):
            lee, ada, val = door.sign_in("lee"), door.sign_in("ada"), door.sign_in("val")
            launched = lee.post("/graphql", json=launch("demo-A")).json()
            run_id = launched["data"]["launchPipelineExecution"]["run"]["runId"]
            assert lee.post("/graphql", json=launch("demo-B")).status_code == 403
            assert ada.post("/graphql", json=terminate(run_id)).status_code == 200
            telemetry = {
                "query": 'mutation { logTelemetry(action: "x", clientTime: "1", '
                'clientId: "c", metadata: "{}") { __typename } }'
            }
            assert val.post("/graphql", json=telemetry).status_code == 200
            assert val.post("/graphql", json={"query": "{ version }"}).status_code == 200
        assert writer.flush(10)
    finally:
        writer.close()
    entries = list(reversed(store.query("fleet-under-test")))
    seen = [(e.actor, e.action.value, e.outcome.value, e.location, e.environment) for e in entries]
    assert seen == [
        ("lee", "run.launch", "allowed", "demo-A", "A"),
        ("lee", "graphql.other", "denied", None, None),
        ("ada", "run.terminate", "allowed", "demo-A", "A"),
    ], seen
    assert entries[0].repository == "demo" and entries[0].via.value == "password"
    assert "lee may not launch in location demo-B" in (entries[1].detail or "")
    assert entries[0].client == "127.0.0.1"
