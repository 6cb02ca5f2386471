"""GET /api/v1/audit on the real API app over a real fleet directory: what the API's
changes record (the token's name, via token; a signed push as `<provider>-webhook`),
the filters, and the refusals. `RecordingController` stands in for the live runtime."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from dagfleet.api import create_app
from dagfleet.frontdoor.tokens import token_name
from tests.integration.test_api_app import (
    ADMIN,
    READER,
    RecordingController,
    _github,
    _payload,
    _repo,
    _settings,
)
from tests.integration.test_api_app import controller as controller
from tests.integration.test_api_app import fleet_dir as fleet_dir

pytestmark = pytest.mark.integration
V1 = "/api/v1"


@pytest.fixture
def client(fleet_dir: Path, controller: RecordingController) -> Iterator[TestClient]:
    app = create_app(_settings(fleet_dir, status_cache_seconds=0), controller)
    with TestClient(app, headers={"Authorization": f"Bearer {ADMIN}"}) as c:
        yield c


def _push(client: TestClient, branch: str) -> int:
    body = _payload("https://git.example.com/sales.git", f"refs/heads/{branch}")
    resp = client.post(f"{V1}/hooks/git", content=body, headers={**_github(body)})
    return int(resp.status_code)


def test_api_changes_and_pushes_are_recorded(client: TestClient) -> None:
    assert client.post(f"{V1}/repos", json=_repo()).status_code == 201
    assert client.patch(f"{V1}/repos/sales", json={"branch": "main"}).status_code == 200
    assert client.patch(f"{V1}/repos/nope", json={"branch": "main"}).status_code == 404
    promote = {"repo": "sales", "source": "A", "target": "B", "merge": False}
    assert client.post(f"{V1}/promote", json=promote).status_code == 200
    assert _push(client, "A") == 200
    assert _push(client, "feature") == 202  # nobody follows it: nothing happened, no entry
    log = client.get(f"{V1}/audit").json()
    assert [(e["actor"], e["via"], e["action"], e["outcome"]) for e in log] == [
        ("github-webhook", "webhook", "repo.sync", "allowed"),
        (token_name(ADMIN), "token", "promote", "allowed"),
        (token_name(ADMIN), "token", "repo.change", "failed"),
        (token_name(ADMIN), "token", "repo.change", "allowed"),
        (token_name(ADMIN), "token", "repo.add", "allowed"),
    ]
    push, promoted, missing, *_ = log
    assert (push["repository"], push["location"], push["target"]) == ("sales", "sales-A", "A")
    assert promoted["target"] == "c" * 40 and promoted["environment"] == "B"
    assert "nope" in missing["detail"] and missing["client"] == "testclient"

    def ids(**params: object) -> list[int]:
        resp = client.get(f"{V1}/audit", params=params)
        assert resp.status_code == 200, resp.text
        return [e["id"] for e in resp.json()]

    every = [e["id"] for e in log]
    assert ids(action="repo.change") == every[2:4]
    assert ids(actor="github-webhook") == every[:1]
    assert ids(location="sales-A") == every[:1]
    assert ids(since="1h", limit=2) == every[:2]
    assert ids(before=every[1]) == every[2:]
    assert ids(since="2000-01-01", actor="nobody") == []
    reader = client.get(f"{V1}/audit", headers={"Authorization": f"Bearer {READER}"})
    assert reader.status_code == 200 and len(reader.json()) == len(log)


@pytest.mark.parametrize(
    ("params", "status", "said"),
    [
        ({"since": "yesterday"}, 400, "since: 'yesterday' is not a time"),
        ({"action": "deploy"}, 422, "action"),
        ({"limit": 0}, 422, "limit"),
        ({"before": 0}, 422, "before"),
    ],
)
def test_bad_filters_are_refused(
    client: TestClient, params: dict[str, object], status: int, said: str
) -> None:
    resp = client.get(f"{V1}/audit", params=params)
    assert resp.status_code == status and said in resp.text, resp.text


def test_reading_needs_a_token(client: TestClient) -> None:
    assert client.get(f"{V1}/audit", headers={"Authorization": ""}).status_code == 401
