"""Which code location a run, backfill, asset key or schedule/sensor id belongs to.

The gate (gate.py) needs locations to check scoped grants; a mutation often names only
an id. `WebserverResolver` asks the upstream Dagster webserver's own GraphQL (directly,
not through the front door) and answers None when it cannot tell, which the gate reads
as "the action is needed fleet-wide". A run never changes location, so run answers are
kept (bounded, unknown runs are not: one launched a moment ago may be asked about next).
Asset keys and schedule/sensor ids come from one table of the workspace (per location:
its asset nodes, schedules and sensors), read again after `ttl` seconds or on a miss.
Backfills are asked each time (rare, and their assets may move).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

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

WORKSPACE = """
query DagfleetGateWorkspace {
  repositoriesOrError {
    __typename
    ... on RepositoryConnection {
      nodes {
        location { name }
        assetNodes { assetKey { path } }
        schedules { id scheduleState { id selectorId } }
        sensors { id sensorState { id selectorId } }
      }
    }
  }
}"""


@dataclass(frozen=True)
class _Workspace:
    """Per location: its asset keys and its schedule/sensor ids (every part of each)."""

    read_at: float
    assets: dict[tuple[str, ...], frozenset[str]]
    instigators: dict[str, str | None]  # None: the id is in two locations


_RUNS_KEPT = 10_000
T = TypeVar("T")


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
        self._workspace: _Workspace | None = None

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
        return frozenset(locations) or None

    async def asset_locations(self, path: tuple[str, ...]) -> frozenset[str] | None:
        """Every location with an asset node for this key (definitions and external ones).

        Read per repository: the webserver's top-level `assetNodes` shows one node per key
        even when several locations define it.
        """
        if not path:
            return None
        return await self._lookup(lambda w: w.assets.get(path))

    async def instigator_location(self, instigator_id: str) -> str | None:
        """The location of a schedule or sensor by origin id, selector id or compound id."""
        return await self._lookup(lambda w: w.instigators.get(instigator_id))

    async def _lookup(self, find: Callable[[_Workspace], T | None]) -> T | None:
        """`find` in the workspace table; the table is read again when older than the TTL,
        or on a miss when older than a second (a schedule or asset added since)."""
        now = time.monotonic()
        if self._workspace is not None and now - self._workspace.read_at <= self._ttl:
            found = find(self._workspace)
            if found is not None or now - self._workspace.read_at < 1.0:
                return found
        workspace = await self._read_workspace()
        if workspace is None:
            return None
        self._workspace = workspace
        return find(workspace)

    async def _read_workspace(self) -> _Workspace | None:
        data = await self._query(WORKSPACE, {})
        repos = (data or {}).get("repositoriesOrError") or {}
        if repos.get("__typename") != "RepositoryConnection":
            return None
        assets: dict[tuple[str, ...], set[str]] = {}
        instigators: dict[str, str | None] = {}

        def add(ident: Any, location: str) -> None:
            if not isinstance(ident, str) or not ident:
                return
            for part in {ident, *ident.split("::")}:
                # the same id in two locations is ambiguous: unknown (fleet-wide)
                same = instigators.get(part, location) == location
                instigators[part] = location if same else None

        for repo in repos.get("nodes") or ():
            location = _str((repo.get("location") or {}).get("name"))
            if location is None:
                continue
            for node in repo.get("assetNodes") or ():
                path = (node.get("assetKey") or {}).get("path")
                if isinstance(path, list) and path:
                    assets.setdefault(tuple(path), set()).add(location)
            for kind, state in (("schedules", "scheduleState"), ("sensors", "sensorState")):
                for item in repo.get(kind) or ():
                    add(item.get("id"), location)
                    add((item.get(state) or {}).get("id"), location)
                    add((item.get(state) or {}).get("selectorId"), location)
        return _Workspace(
            time.monotonic(), {k: frozenset(v) for k, v in assets.items()}, instigators
        )


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
