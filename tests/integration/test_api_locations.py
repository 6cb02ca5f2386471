"""The real API app over a real fleet directory: publish history, rollback, unpin, fleet logs.

History rows are written by the real store (SQLite in the fleet's state directory);
`PinningController` stands in for the live runtime: it records syncs and answers
that each location now serves what its repo file pins (or its branch's tip).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from dagfleet.api import ApiSettings, create_app
from dagfleet.control import SyncOutcome
from dagfleet.history.models import PublishAttempt, StepTime
from dagfleet.history.store import HistoryStore
from dagfleet.layout import Layout
from dagfleet.offline import OfflineController
from dagfleet.service.identity import fleet_id
from dagfleet.status import LocationStatus, StatusStore
from tests.support.fleetproc import write_fleet

pytestmark = pytest.mark.integration
ADMIN, READER = "admin-token", "read-token"
V1 = "/api/v1"
C1, C2, C3 = "a1" * 20, "b2" * 20, "c3" * 20


@dataclass
class PinningController(OfflineController):
    fleet_dir: Path
    syncs: list[tuple[str | None, str | None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(self.fleet_dir)

    def sync(self, repo: str | None, env: str | None, wait: bool) -> list[SyncOutcome]:
        self.syncs.append((repo, env))
        fleet = self.fleet()
        return [
            SyncOutcome(loc.name, True, loc.pin or C3)
            for loc in fleet.locations()
            if loc.repo == repo and loc.env == env
        ]


def _attempt(commit: str, previous: str | None, outcome: str = "published") -> PublishAttempt:
    return PublishAttempt(
        location="demo-A",
        repo="demo",
        env="A",
        commit=commit,
        previous=previous,
        author="ada",
        subject=f"commit {commit[0]}",
        started="2026-01-01T00:00:00+00:00",
        finished="2026-01-01T00:00:09+00:00",
        seconds=9.0,
        steps=[StepTime(step="install", seconds=8.0), StepTime(step="load", seconds=1.0)],
        outcome=outcome,
        reason=None if outcome == "published" else "DefinitionsInvalid",
    )


def history_fleet(tmp_path: Path) -> Path:
    """demo in A and B; demo-A published C1 then C2 (live), then failed on f..f; logs."""
    fleet_dir = write_fleet(
        tmp_path / "fleet",
        {"demo": {"git_url": "https://git.example.com/demo.git", "module_name": "demo.defs"}},
    )
    repo_file = fleet_dir / "repos" / "demo.yaml"
    repo_file.write_text("# the demo code\n" + repo_file.read_text())
    layout = Layout.for_fleet(fleet_dir)
    store = HistoryStore(f"sqlite:///{layout.root / 'history.db'}")
    store.add(
        fleet_id(layout),
        [_attempt(C1, None), _attempt(C2, C1), _attempt("f" * 40, C2, "failed")],
    )
    store.close()
    StatusStore(layout.status).write(
        LocationStatus(location="demo-A", repo="demo", env="A", commit=C2)
    )
    (layout.logs).mkdir(parents=True)
    for name, lines in {
        "dagfleet": "starting fleet test\nhistory in sqlite\n",
        "webserver": "Serving dagster-webserver\n",
        "demo-A": "loaded demo\n",
    }.items():
        (layout.logs / f"{name}.log").write_text(lines)
    return fleet_dir


@pytest.fixture
def fleet_dir(tmp_path: Path) -> Path:
    return history_fleet(tmp_path)


@pytest.fixture
def controller(fleet_dir: Path) -> PinningController:
    return PinningController(fleet_dir)


@pytest.fixture
def client(fleet_dir: Path, controller: PinningController) -> Iterator[TestClient]:
    settings = ApiSettings(
        fleet_dir=fleet_dir,
        tokens={ADMIN: "admin", READER: "read"},
        status_cache_seconds=0,
        follow_max_seconds=0.5,
    )
    with TestClient(
        create_app(settings, controller), headers={"Authorization": f"Bearer {ADMIN}"}
    ) as c:
        yield c


def _read(token: str = READER) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_history_newest_first_with_limit(client: TestClient) -> None:
    resp = client.get(f"{V1}/locations/demo-A/history", headers=_read())
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert [a["commit"][0] for a in body] == ["f", "b", "a"]
    assert body[0]["outcome"] == "failed" and body[0]["reason"] == "DefinitionsInvalid"
    assert body[1]["steps"] == [
        {"step": "install", "seconds": 8.0},
        {"step": "load", "seconds": 1.0},
    ]
    limited = client.get(f"{V1}/locations/demo-A/history", params={"limit": 1}).json()
    assert [a["commit"] for a in limited] == ["f" * 40]
    assert client.get(f"{V1}/locations/demo-B/history").json() == []


def test_history_refusals(client: TestClient) -> None:
    missing = client.get(f"{V1}/locations/nope-A/history")
    assert missing.status_code == 404 and "dagfleet status" in missing.json()["detail"]
    assert client.get(f"{V1}/locations/demo-A/history", params={"limit": 0}).status_code == 422
    anonymous = client.get(f"{V1}/locations/demo-A/history", headers={"Authorization": ""})
    assert anonymous.status_code == 401


def _pins(fleet_dir: Path) -> dict[str, Any]:
    return dict(yaml.safe_load((fleet_dir / "repos" / "demo.yaml").read_text()).get("pins", {}))


def test_rollback_pins_the_previous_commit_then_unpin_follows_the_branch(
    client: TestClient, fleet_dir: Path, controller: PinningController
) -> None:
    repo_file = fleet_dir / "repos" / "demo.yaml"
    before = repo_file.read_text()
    refused = client.post(f"{V1}/locations/demo-A/rollback", json={}, headers=_read())
    assert refused.status_code == 403
    resp = client.post(f"{V1}/locations/demo-A/rollback", json={"to": None})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["pin"] == C1 and body["previous_pin"] is None
    assert body["live"] and body["running"] and not body["validated"]
    assert body["locations"] == ["demo-A"] and body["repo_file"] == "repos/demo.yaml"
    assert _pins(fleet_dir) == {"A": C1}
    after = repo_file.read_text()
    assert after.startswith("# the demo code\n") and after == before + f"pins:\n  A: {C1}\n"
    assert controller.syncs == [("demo", "A")]

    # A short SHA of a commit that went live here: no load check, the full SHA is pinned.
    again = client.post(f"{V1}/locations/demo-A/rollback", json={"to": C2[:8]}).json()
    assert again["pin"] == C2 and again["previous_pin"] == C1 and _pins(fleet_dir) == {"A": C2}

    unpinned = client.post(f"{V1}/locations/demo-A/unpin")
    assert unpinned.status_code == 200, unpinned.text
    assert unpinned.json()["pin"] is None and unpinned.json()["previous_pin"] == C2
    assert unpinned.json()["outcomes"][0]["commit"] == C3
    assert repo_file.read_text() == before  # no `pins: {}` left behind
    assert client.post(f"{V1}/locations/demo-A/unpin").json()["changed"] is False


def test_rollback_refusals(client: TestClient, fleet_dir: Path) -> None:
    bad = client.post(f"{V1}/locations/demo-A/rollback", json={"to": "main"})
    assert bad.status_code == 422 and "not a commit SHA" in bad.text
    unknown = client.post(f"{V1}/locations/nope-A/rollback", json={})
    assert unknown.status_code == 404
    # demo-B has no history: nothing to go back to.
    nothing = client.post(f"{V1}/locations/demo-B/rollback", json={})
    assert nothing.status_code == 409 and "--to SHA" in nothing.json()["detail"]
    assert _pins(fleet_dir) == {}


def test_fleet_logs(client: TestClient) -> None:
    one = client.get(f"{V1}/logs", params={"source": "dagfleet", "tail": 1}, headers=_read())
    assert one.status_code == 200 and one.text == "history in sqlite\n"
    every = client.get(f"{V1}/logs").text
    assert "[webserver] Serving dagster-webserver\n" in every
    assert "[demo-A] loaded demo\n" in every and "[dagfleet] starting fleet test\n" in every
    unknown = client.get(f"{V1}/logs", params={"source": "nope"})
    assert unknown.status_code == 404 and "webserver" in unknown.json()["detail"]
    followed = client.get(f"{V1}/logs", params={"source": "demo-A", "follow": "true"})
    assert followed.status_code == 200 and followed.text == "loaded demo\n"
