"""Trying to get a mutation past the GraphQL gate as a viewer, every way a client can
shape a request: each attempt is refused with a 4xx (never a 5xx), and the canary —
the demo-A schedule a successful `startSchedule` would turn on — stays stopped."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.frontdoor import Door, dagster_webserver, fleet_dir, front_door

SELECTOR = (
    '{repositoryLocationName: "demo-A", repositoryName: "__repository__", scheduleName: "nightly"}'
)
START = f"startSchedule(scheduleSelector: {SELECTOR}) {{ __typename }}"
STATE = (
    "{ scheduleOrError(scheduleSelector: "
    + SELECTOR
    + ") { ... on Schedule { scheduleState { status } } } }"
)
ADMIN = "bypass-admin-token"


def _deep(levels: int) -> str:
    return (
        "query { "
        + "workspaceOrError { ... on Workspace { " * levels
        + "__typename"
        + " } }" * levels
        + " }"
    )


# (name, method, content type, body or query params)
ATTEMPTS: list[tuple[str, str, str | None, Any]] = [
    ("plain", "POST", "application/json", {"query": f"mutation {{ {START} }}"}),
    ("alias", "POST", "application/json", {"query": f"mutation {{ look: {START} }}"}),
    (
        "named fragment",
        "POST",
        "application/json",
        {"query": f"mutation {{ ...M }} fragment M on Mutation {{ {START} }}"},
    ),
    (
        "inline fragment",
        "POST",
        "application/json",
        {"query": f"mutation {{ ... on Mutation {{ {START} }} }}"},
    ),
    (
        "nested fragments",
        "POST",
        "application/json",
        {
            "query": "mutation { ...A } fragment A on Mutation { ...B } "
            f"fragment B on Mutation {{ {START} }}"
        },
    ),
    (
        "batch",
        "POST",
        "application/json",
        [{"query": "{ __typename }"}, {"query": f"mutation {{ {START} }}"}],
    ),
    (
        "named operation among several",
        "POST",
        "application/json",
        {"query": f"query Q {{ __typename }} mutation M {{ {START} }}", "operationName": "M"},
    ),
    (
        "several operations, none named",
        "POST",
        "application/json",
        {"query": f"query Q {{ __typename }} mutation M {{ {START} }}"},
    ),
    (
        "variables hide the location",
        "POST",
        "application/json",
        {
            "query": "mutation S($s: ScheduleSelector!) { startSchedule(scheduleSelector: $s) "
            "{ __typename } }",
            "variables": {},
        },
    ),
    ("GET", "GET", None, {"query": f"mutation {{ {START} }}"}),
    # The webserver runs the last of a repeated parameter: the gate must judge that one.
    (
        "GET, query repeated",
        "GET",
        None,
        [("query", "{ __typename }"), ("query", f"mutation {{ {START} }}")],
    ),
    ("application/graphql", "POST", "application/graphql", f"mutation {{ {START} }}"),
    # The webserver reads a POST of any other content type from the URL's parameters.
    ("POST, query in the URL", "POST-URL", None, {"query": f"mutation {{ {START} }}"}),
    (
        "POST text/plain, query in the URL",
        "POST-URL",
        "text/plain",
        {"query": f"mutation {{ {START} }}"},
    ),
    ("text/plain", "POST", "text/plain", json.dumps({"query": f"mutation {{ {START} }}"})),
    ("form", "POST", "application/x-www-form-urlencoded", f"query=mutation {{ {START} }}"),
    (
        "multipart",
        "POST",
        "multipart/form-data; boundary=x",
        f'--x\r\nContent-Disposition: form-data; name="operations"\r\n\r\n'
        f"{json.dumps({'query': f'mutation {{ {START} }}'})}\r\n--x--\r\n",
    ),
    (
        "persisted query",
        "POST",
        "application/json",
        {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": "ab" * 32}}},
    ),
    (
        "duplicate query keys",
        "POST",
        "application/json",
        '{"query": "{ __typename }", "query": "mutation { ' + START.replace('"', '\\"') + ' }"}',
    ),
    ("malformed JSON", "POST", "application/json", '{"query": "mutation {'),
    ("query not a string", "POST", "application/json", {"query": ["mutation", START]}),
    ("syntax error", "POST", "application/json", {"query": f"mutation {{ {START}"}),
    ("oversized", "POST", "application/json", {"query": "{ __typename }", "pad": "x" * 3_000_000}),
    ("too deep", "POST", "application/json", {"query": _deep(200)}),
    ("empty body", "POST", "application/json", ""),
    ("null", "POST", "application/json", "null"),
]


@pytest.fixture(scope="module")
def door(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Door]:
    tmp = tmp_path_factory.mktemp("bypass")
    env = {"DAGFLEET_API_TOKENS": f"{ADMIN}:admin"}
    with dagster_webserver(tmp / "dagster") as web, front_door(fleet_dir(tmp), web.url, env) as d:
        yield d


def _send(viewer: httpx.Client, method: str, content_type: str | None, body: Any) -> httpx.Response:
    if method == "GET":
        return viewer.get("/graphql", params=body)
    if method == "POST-URL":
        headers = {"content-type": content_type} if content_type else {}
        return viewer.post("/graphql", params=body, headers=headers)
    raw = body if isinstance(body, str) else json.dumps(body)
    return viewer.post(
        "/graphql", content=raw.encode(), headers={"content-type": content_type or ""}
    )


def test_no_mutation_gets_past_the_gate(door: Door) -> None:
    viewer = door.sign_in("val")
    results = {}
    for name, method, content_type, body in ATTEMPTS:
        response = _send(viewer, method, content_type, body)
        results[name] = response.status_code
    bypassed = {name: code for name, code in results.items() if not 400 <= code < 500}
    assert bypassed == {}, results
    with door.client(headers={"authorization": f"Bearer {ADMIN}"}) as admin:
        state = admin.post("/graphql", json={"query": STATE}).json()
    assert state["data"]["scheduleOrError"]["scheduleState"]["status"] == "STOPPED", state


def test_the_canary_would_have_caught_a_bypass(door: Door) -> None:
    """The same mutation from someone allowed does turn the schedule on (then off)."""
    with door.client(headers={"authorization": f"Bearer {ADMIN}"}) as admin:
        started = admin.post("/graphql", json={"query": f"mutation {{ {START} }}"})
        assert started.status_code == 200, started.text
        state = admin.post("/graphql", json={"query": STATE}).json()
        assert state["data"]["scheduleOrError"]["scheduleState"]["status"] == "RUNNING"
        stop = "mutation { resetSchedule(scheduleSelector: " + SELECTOR + ") { __typename } }"
        assert admin.post("/graphql", json={"query": stop}).status_code == 200
