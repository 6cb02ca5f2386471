"""The gate's resolver against a real Dagster webserver: runs, backfills, asset keys and
schedule/sensor ids map to the code location they belong to; unknown ids to None.

Two locations from two definitions files, so a wrong answer cannot pass by accident;
both define the asset `shared`, which belongs to both.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from dagfleet.frontdoor.gate import authorize, parse_request
from dagfleet.frontdoor.resolve import WebserverResolver
from dagfleet.frontdoor.roles import Grant, Principal, Target
from tests.support.frontdoor import dagster_webserver

DEFINITIONS = """
import dagster as dg

@dg.asset(name="{prefix}_numbers", partitions_def=dg.StaticPartitionsDefinition(["p1", "p2"]))
def numbers() -> int:
    return 1

@dg.asset
def shared() -> int:
    return 2

job = dg.define_asset_job("{prefix}_job", selection=[numbers])

@dg.schedule(name="{prefix}_nightly", job=job, cron_schedule="0 0 * * *")
def nightly():
    return dg.RunRequest(partition_key="p1")

@dg.sensor(name="{prefix}_watcher", job=job)
def watcher():
    return dg.SkipReason("nothing to do")

defs = dg.Definitions(assets=[numbers, shared], jobs=[job], schedules=[nightly], sensors=[watcher])
"""
LOCATIONS = ("alpha", "beta")

LAUNCH = """
mutation Launch($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
  }
}"""

BACKFILL = """
mutation Backfill($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
  }
}"""

INSTIGATORS = """
query {
  repositoriesOrError { ... on RepositoryConnection { nodes {
    location { name }
    schedules { name id scheduleState { id selectorId } }
    sensors { name id sensorState { id selectorId } }
  } } }
}"""


def graphql(url: str, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    response = httpx.post(
        f"{url}/graphql", json={"query": query, "variables": variables or {}}, timeout=60
    )
    body = response.json()
    assert not body.get("errors"), body
    data: dict[str, Any] = body["data"]
    return data


@pytest.fixture(scope="module")
def webserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    sources = {name: DEFINITIONS.replace("{prefix}", name) for name in LOCATIONS}
    with dagster_webserver(tmp_path_factory.mktemp("gate"), sources) as web:
        yield web.url


def launch(url: str, location: str) -> str:
    selector = {
        "repositoryLocationName": location,
        "repositoryName": "__repository__",
        "jobName": f"{location}_job",
    }
    params = {
        "selector": selector,
        "executionMetadata": {"tags": [{"key": "dagster/partition", "value": "p1"}]},
    }
    result = graphql(url, LAUNCH, {"params": params})["launchRun"]
    assert result["__typename"] == "LaunchRunSuccess", result
    return str(result["run"]["runId"])


def resolver_call(url: str, method: str, *args: Any) -> Any:
    async def go() -> Any:
        resolver = WebserverResolver(url)
        try:
            return await getattr(resolver, method)(*args)
        finally:
            await resolver.aclose()

    return asyncio.run(go())


def test_a_launched_run_resolves_to_its_location(webserver: str) -> None:
    run_alpha, run_beta = launch(webserver, "alpha"), launch(webserver, "beta")
    assert resolver_call(webserver, "run_location", run_alpha) == "alpha"
    assert resolver_call(webserver, "run_location", run_beta) == "beta"
    assert resolver_call(webserver, "run_location", "no-such-run") is None


def test_asset_keys_resolve_to_every_location_defining_them(webserver: str) -> None:
    assert resolver_call(webserver, "asset_locations", ("alpha_numbers",)) == {"alpha"}
    assert resolver_call(webserver, "asset_locations", ("beta_numbers",)) == {"beta"}
    assert resolver_call(webserver, "asset_locations", ("shared",)) == {"alpha", "beta"}
    assert resolver_call(webserver, "asset_locations", ("nowhere",)) is None


def test_schedule_and_sensor_ids_resolve_to_their_location(webserver: str) -> None:
    nodes = graphql(webserver, INSTIGATORS)["repositoriesOrError"]["nodes"]
    seen = 0
    for repo in nodes:
        location = repo["location"]["name"]
        for kind, state in (("schedules", "scheduleState"), ("sensors", "sensorState")):
            for item in repo[kind]:
                origin, selector = item["id"].split("::")
                for ident in (item["id"], origin, selector, item[state]["selectorId"]):
                    assert resolver_call(webserver, "instigator_location", ident) == location
                seen += 1
    assert seen == 4  # a schedule and a sensor in each location
    assert resolver_call(webserver, "instigator_location", "deadbeef") is None


def test_a_backfill_resolves_to_its_assets_locations(webserver: str) -> None:
    params = {"partitionNames": ["p1"], "assetSelection": [{"path": ["beta_numbers"]}]}
    result = graphql(webserver, BACKFILL, {"params": params})["launchPartitionBackfill"]
    assert result["__typename"] == "LaunchBackfillSuccess", result
    assert resolver_call(webserver, "backfill_locations", result["backfillId"]) == {"beta"}
    assert resolver_call(webserver, "backfill_locations", "nobackfill") is None


def test_a_scoped_editor_may_terminate_only_its_locations_runs(webserver: str) -> None:
    """The gate and the resolver together, on the UI's own way of asking."""
    run_alpha, run_beta = launch(webserver, "alpha"), launch(webserver, "beta")
    editor = Principal("eve", "password", (Grant("editor", locations=("alpha",)),))

    def decide(run_id: str) -> Any:
        body = (
            b'{"query": "mutation Terminate($runIds: [String!]!) '
            b'{ terminateRuns(runIds: $runIds) { __typename } }", '
            b'"variables": {"runIds": ["' + run_id.encode() + b'"]}}'
        )
        ops = parse_request("POST", b"", "application/json", body)

        async def go() -> Any:
            resolver = WebserverResolver(webserver)
            try:
                return await authorize(editor, ops, resolver, lambda loc: Target(loc))
            finally:
                await resolver.aclose()

        return asyncio.run(go())

    allowed = decide(run_alpha)
    assert allowed.allowed and allowed.mutations[0].locations == ("alpha",)
    denied = decide(run_beta)
    assert not denied.allowed and "in location beta" in denied.message


def test_wiping_an_asset_two_locations_define_needs_both(webserver: str) -> None:
    """The webserver's top-level assetNodes shows `shared` once (in one location); the
    resolver must still find both, or an editor of one could wipe the other's history."""
    editor = Principal("eve", "password", (Grant("editor", locations=("alpha",)),))

    def decide(key: str) -> Any:
        body = (
            b'{"query": "mutation { wipeAssets(assetPartitionRanges: [{assetKey: {path: [\\"'
            + key.encode()
            + b'\\"]}}]) { __typename } }"}'
        )
        ops = parse_request("POST", b"", "application/json", body)

        async def go() -> Any:
            resolver = WebserverResolver(webserver)
            try:
                return await authorize(editor, ops, resolver, lambda loc: Target(loc))
            finally:
                await resolver.aclose()

        return asyncio.run(go())

    assert decide("alpha_numbers").allowed
    assert not decide("shared").allowed
    assert not decide("beta_numbers").allowed
