"""Role x operation through the front door, over real HTTP and websockets, against a
real Dagster webserver serving demo-A and demo-B (the fleet's repo `demo` in
environments A and B).

Who holds what (tests/support/frontdoor.py): ada admin, ed editor, lou launcher,
val viewer (fleet-wide); lee launcher in A and viewer in B; bea editor in B;
pat launcher on locations matching demo-A. Each case is one real request with
the user's session cookie; an allowed one reaches Dagster (200, no gate error),
a refused one gets 403 naming the user, the action and the location.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import websockets.sync.client as ws_client
from websockets.exceptions import InvalidStatus

from tests.support.frontdoor import (
    Door,
    dagster_webserver,
    fleet_dir,
    front_door,
    launch,
    terminate,
)

USERS = ("ada", "ed", "lou", "val", "lee", "bea", "pat")
ADMIN_TOKEN = "matrix-admin-token"


def start_schedule(location: str) -> dict[str, Any]:
    return {
        "query": "mutation Start($s: ScheduleSelector!) { startSchedule(scheduleSelector: $s) "
        "{ __typename } }",
        "variables": {
            "s": {
                "repositoryLocationName": location,
                "repositoryName": "__repository__",
                "scheduleName": "nightly",
            }
        },
    }


def reload_location(location: str) -> dict[str, Any]:
    # An alias and a fragment: the gate must see the real field behind them.
    return {
        "query": "mutation { again: reloadRepositoryLocation(repositoryLocationName: "
        f'"{location}") {{ ...Entry }} }} fragment Entry on RepositoryLocationOrLoadError '
        "{ __typename }"
    }


QUERY = {"query": "{ workspaceOrError { __typename } }"}
RELOAD_ALL = {"query": "mutation { reloadWorkspace { __typename } }"}
WIPE = {
    "query": "mutation Wipe($r: [PartitionsByAssetSelector!]!) { wipeAssets(assetPartitionRanges: "
    "$r) { __typename } }",
    "variables": {"r": [{"assetKey": {"path": ["numbers"]}}]},
}

# operation -> the users it is allowed for; everyone else is refused.
ALLOWED: dict[str, set[str]] = {
    "query": set(USERS),
    "launch A": {"ada", "ed", "lou", "lee", "pat"},
    "launch B": {"ada", "ed", "lou", "bea"},
    "terminate run in A": {"ada", "ed"},
    "terminate run in B": {"ada", "ed", "bea"},
    "start schedule in A": {"ada", "ed"},
    "reload location B": {"ada", "ed", "bea"},
    "reload the workspace": {"ada"},
    "wipe an asset of A and B": {"ada", "ed"},
}


@pytest.fixture(scope="module")
def door(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Door]:
    tmp = tmp_path_factory.mktemp("matrix")
    with (
        dagster_webserver(tmp / "dagster") as web,
        front_door(fleet_dir(tmp), web.url, {"DAGFLEET_API_TOKENS": f"{ADMIN_TOKEN}:admin"}) as d,
    ):
        yield d


@pytest.fixture(scope="module")
def sessions(door: Door) -> dict[str, httpx.Client]:
    return {name: door.sign_in(name) for name in USERS}


@pytest.fixture(scope="module")
def runs(door: Door) -> dict[str, str]:
    """One run in each location, launched by the admin token."""
    out = {}
    with door.client(headers={"authorization": f"Bearer {ADMIN_TOKEN}"}) as admin:
        for env in ("A", "B"):
            data = admin.post("/graphql", json=launch(f"demo-{env}")).json()["data"]
            out[env] = data["launchPipelineExecution"]["run"]["runId"]
    return out


def body_for(operation: str, runs: dict[str, str]) -> dict[str, Any]:
    return {
        "query": QUERY,
        "launch A": launch("demo-A"),
        "launch B": launch("demo-B"),
        "terminate run in A": terminate(runs["A"]),
        "terminate run in B": terminate(runs["B"]),
        "start schedule in A": start_schedule("demo-A"),
        "reload location B": reload_location("demo-B"),
        "reload the workspace": RELOAD_ALL,
        "wipe an asset of A and B": WIPE,
    }[operation]


CASES = [(user, op) for op in ALLOWED for user in USERS]


@pytest.mark.parametrize(("user", "operation"), CASES, ids=[f"{u}-{o}" for u, o in CASES])
def test_role_matrix(
    user: str, operation: str, sessions: dict[str, httpx.Client], runs: dict[str, str]
) -> None:
    response = sessions[user].post("/graphql", json=body_for(operation, runs))
    if user in ALLOWED[operation]:
        assert response.status_code == 200, response.text
        assert "DAGFLEET" not in response.text, response.text
        assert "data" in response.json()
    else:
        assert response.status_code == 403, response.text
        message = response.json()["errors"][0]["message"]
        assert message.startswith(f"{user} may not "), message


def test_a_batch_with_one_refused_operation_is_refused_whole(
    sessions: dict[str, httpx.Client], runs: dict[str, str]
) -> None:
    batch = [QUERY, launch("demo-A"), launch("demo-B")]
    refused = sessions["lee"].post("/graphql", json=batch)
    assert refused.status_code == 403 and "demo-B" in refused.text
    # Allowed whole, but Dagster's webserver cannot run a batch (it would answer 500):
    # the front door says so instead.
    allowed = sessions["lee"].post("/graphql", json=[QUERY, launch("demo-A")])
    assert allowed.status_code == 400 and "one operation per request" in allowed.text


def _ws(door: Door, cookie: str, origin: str | None = None) -> Any:
    headers = {"cookie": cookie, "origin": origin or door.url}
    return ws_client.connect(
        door.url.replace("http", "ws") + "/graphql",
        subprotocols=["graphql-ws"],  # type: ignore[list-item]
        additional_headers=headers,
        open_timeout=20,
    )


def _cookie(client: httpx.Client) -> str:
    return "; ".join(f"{k}={v}" for k, v in client.cookies.items())


def test_websocket_subscriptions_by_role(
    door: Door, sessions: dict[str, httpx.Client], runs: dict[str, str]
) -> None:
    """The UI's run-log subscription streams for a viewer; a mutation sent over the
    websocket is judged like one over HTTP."""
    with _ws(door, _cookie(sessions["val"])) as ws:
        ws.send(json.dumps({"type": "connection_init", "payload": {}}))
        assert json.loads(ws.recv(timeout=20))["type"] == "connection_ack"
        subscription = (
            "subscription Logs($runId: ID!) { pipelineRunLogs(runId: $runId) { __typename } }"
        )
        ws.send(
            json.dumps(
                {
                    "id": "1",
                    "type": "start",
                    "payload": {"query": subscription, "variables": {"runId": runs["A"]}},
                }
            )
        )
        first = json.loads(ws.recv(timeout=30))
        assert first["type"] == "data" and first["id"] == "1", first
        ws.send(json.dumps({"id": "2", "type": "start", "payload": launch("demo-A")}))
        while True:
            message = json.loads(ws.recv(timeout=30))
            if message.get("id") == "2":
                break
        assert message["type"] == "error", message
        assert "val may not launch in location demo-A" in message["payload"]["message"]


def test_websockets_need_a_session_from_this_site(
    door: Door, sessions: dict[str, httpx.Client]
) -> None:
    with pytest.raises(InvalidStatus) as stranger:
        _ws(door, "dagfleet_session=forged.value")
    assert stranger.value.response.status_code == 403
    with pytest.raises(InvalidStatus) as cross_site:
        _ws(door, _cookie(sessions["ada"]), origin="http://evil.example")
    assert cross_site.value.response.status_code == 403


def test_other_paths_need_a_role_and_reads_only(
    door: Door, sessions: dict[str, httpx.Client]
) -> None:
    val = sessions["val"]
    assert val.get("/server_info").status_code == 200
    assert val.delete("/runs").status_code == 405
    report = val.post("/report_asset_materialization/numbers", headers={"origin": door.url})
    assert report.status_code == 403 and "launch" in report.text
