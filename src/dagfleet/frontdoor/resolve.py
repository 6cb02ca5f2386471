"""Which code location a run, backfill, asset key or schedule/sensor id belongs to.

The gate (gate.py) needs locations to check scoped grants; a mutation often names only
an id. `WebserverResolver` asks the upstream Dagster webserver's own GraphQL (directly,
not through the front door) and answers None when it cannot tell, which the gate reads
as "the action is needed fleet-wide". A run never changes location, so run answers are
kept (bounded); other answers live `ttl` seconds; unknowns are never cached (a run just
launched may be asked about next).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any

import httpx

RUN = """
query DagfleetGateRun($runId: ID!) {
  runOrError(runId: $runId) {
    __typename
    ... on Run { repositoryOrigin { repositoryLocationName } }
  }
}"""

BACKFILL = """
query DagfleetGateBackfill($backfillId: String!) {
  partitionBackfillOrError(backfillId: $backfillId) {
    __typename
    ... on PartitionBackfill {
      partitionSet { repositoryOrigin { repositoryLocationName } }
      assetSelection { path }
    }
  }
}"""

ASSETS = """
query DagfleetGateAssets($assetKeys: [AssetKeyInput!]) {
  assetNodes(assetKeys: $assetKeys) {
    assetKey { path }
    repository { location { name } }
  }
}"""

INSTIGATORS = """
query DagfleetGateInstigators {
  repositoriesOrError {
    __typename
    ... on RepositoryConnection {
      nodes {
        location { name }
        schedules { id scheduleState { id selectorId } }
        sensors { id sensorState { id selectorId } }
      }
    }
  }
}"""

_RUNS_KEPT = 10_000


class WebserverResolver:
    """A gate.Resolver over the webserver at `base_url` (e.g. http://127.0.0.1:3000)."""

    def __init__(
        self,
        base_url: str,
        client: httpx.AsyncClient | None = None,
        ttl: float = 30.0,
        timeout: float = 10.0,
    ) -> None:
        self._url = base_url.rstrip("/") + "/graphql"
        self._client = client or httpx.AsyncClient(timeout=timeout)
        self._owns_client = client is None
        self._ttl = ttl
        self._runs: OrderedDict[str, str] = OrderedDict()
        self._cache: dict[tuple[str, Any], tuple[float, Any]] = {}
        self._instigators: tuple[float, dict[str, str | None]] | None = None

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    async def _query(self, document: str, variables: dict[str, Any]) -> dict[str, Any] | None:
        """The `data` of a query, or None when the webserver cannot answer it."""
        try:
            response = await self._client.post(
                self._url, json={"query": document, "variables": variables}
            )
            payload = response.json()
        except (httpx.HTTPError, ValueError):
            return None
        if not isinstance(payload, dict) or payload.get("errors"):
            return None
        data = payload.get("data")
        return data if isinstance(data, dict) else None

    def _cached(self, key: tuple[str, Any]) -> Any:
        hit = self._cache.get(key)
        if hit is None or time.monotonic() - hit[0] > self._ttl:
            return None
        return hit[1]

    def _keep(self, key: tuple[str, Any], value: Any) -> Any:
        if value is not None:
            if len(self._cache) > _RUNS_KEPT:
                self._cache.clear()
            self._cache[key] = (time.monotonic(), value)
        return value

    async def run_location(self, run_id: str) -> str | None:
        if run_id in self._runs:
            self._runs.move_to_end(run_id)
            return self._runs[run_id]
        data = await self._query(RUN, {"runId": run_id})
        run = (data or {}).get("runOrError") or {}
        location = _str((run.get("repositoryOrigin") or {}).get("repositoryLocationName"))
        if run.get("__typename") != "Run" or location is None:
            return None
        self._runs[run_id] = location
        if len(self._runs) > _RUNS_KEPT:
            self._runs.popitem(last=False)
        return location

    async def backfill_locations(self, backfill_id: str) -> frozenset[str] | None:
        """The partition set's location and every selected asset's; None if any is unknown."""
        key = ("backfill", backfill_id)
        if (hit := self._cached(key)) is not None:
            return hit  # type: ignore[no-any-return]
        data = await self._query(BACKFILL, {"backfillId": backfill_id})
        backfill = (data or {}).get("partitionBackfillOrError") or {}
        if backfill.get("__typename") != "PartitionBackfill":
            return None
        locations: set[str] = set()
        partition_set = backfill.get("partitionSet")
        if partition_set is not None:
            name = _str((partition_set.get("repositoryOrigin") or {}).get("repositoryLocationName"))
            if name is None:
                return None
            locations.add(name)
        for key_path in backfill.get("assetSelection") or ():
            assets = await self.asset_locations(tuple(key_path.get("path") or ()))
            if assets is None:
                return None
            locations |= assets
        return self._keep(key, frozenset(locations) or None)  # type: ignore[no-any-return]

    async def asset_locations(self, path: tuple[str, ...]) -> frozenset[str] | None:
        """Every location with an asset node for this key (definitions and external ones)."""
        if not path:
            return None
        key = ("asset", path)
        if (hit := self._cached(key)) is not None:
            return hit  # type: ignore[no-any-return]
        data = await self._query(ASSETS, {"assetKeys": [{"path": list(path)}]})
        nodes = (data or {}).get("assetNodes")
        if not isinstance(nodes, list):
            return None
        locations = set()
        for node in nodes:
            if tuple((node.get("assetKey") or {}).get("path") or ()) != path:
                continue
            name = _str(((node.get("repository") or {}).get("location") or {}).get("name"))
            if name is None:
                return None
            locations.add(name)
        return self._keep(key, frozenset(locations) or None)  # type: ignore[no-any-return]

    async def instigator_location(self, instigator_id: str) -> str | None:
        """The location of a schedule or sensor by origin id, selector id or compound id."""
        now = time.monotonic()
        if self._instigators is not None and now - self._instigators[0] <= self._ttl:
            location = self._instigators[1].get(instigator_id)
            if location is not None or now - self._instigators[0] < 1.0:
                return location
        # no table, an old one, or an id it lacks (a schedule added since): read it again
        table = await self._instigator_table()
        if table is None:
            return None
        self._instigators = (time.monotonic(), table)
        return table.get(instigator_id)

    async def _instigator_table(self) -> dict[str, str | None] | None:
        data = await self._query(INSTIGATORS, {})
        repos = (data or {}).get("repositoriesOrError") or {}
        if repos.get("__typename") != "RepositoryConnection":
            return None
        table: dict[str, str | None] = {}

        def add(ident: Any, location: str) -> None:
            if not isinstance(ident, str) or not ident:
                return
            for part in {ident, *ident.split("::")}:
                # the same id in two locations is ambiguous: unknown (fleet-wide)
                table[part] = location if table.get(part, location) == location else None

        for repo in repos.get("nodes") or ():
            location = _str((repo.get("location") or {}).get("name"))
            if location is None:
                continue
            for kind, state in (("schedules", "scheduleState"), ("sensors", "sensorState")):
                for item in repo.get(kind) or ():
                    add(item.get("id"), location)
                    add((item.get(state) or {}).get("id"), location)
                    add((item.get(state) or {}).get("selectorId"), location)
        return table


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
