"""A small client for the webserver's GraphQL API: reloads and location states.

dagster-graphql's DagsterGraphQLClient fetches the whole schema on creation;
publishing needs one mutation in a hurry, so this posts the documents directly.
What only tests and benchmarks ask (runs, asset keys, load errors) is in
tests/support/dagster_client.py.
"""

from __future__ import annotations

from typing import Any

import httpx

RELOAD_LOCATION = """
mutation($name: String!) {
  reloadRepositoryLocation(repositoryLocationName: $name) {
    __typename
    ... on WorkspaceLocationEntry { name locationOrLoadError { __typename } }
    ... on PythonError { message }
  }
}"""

RELOAD_WORKSPACE = """
mutation { reloadWorkspace { __typename ... on PythonError { message } } }"""

LOCATIONS = """
query {
  workspaceOrError {
    __typename
    ... on Workspace {
      locationEntries {
        name
        loadStatus
        locationOrLoadError { __typename }
      }
    }
  }
}"""


class GraphQLError(Exception):
    pass


class DagsterWebserver:
    def __init__(self, url: str, timeout: float = 60.0) -> None:
        self.url = url.rstrip("/") + "/graphql"
        self.client = httpx.Client(timeout=timeout)

    def close(self) -> None:
        self.client.close()

    def query(self, document: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        resp = self.client.post(self.url, json={"query": document, "variables": variables or {}})
        resp.raise_for_status()
        body = resp.json()
        if body.get("errors"):
            raise GraphQLError(str(body["errors"]))
        data: dict[str, Any] = body["data"]
        return data

    def reload_location(self, name: str) -> str:
        data = self.query(RELOAD_LOCATION, {"name": name})["reloadRepositoryLocation"]
        return str(data["__typename"])

    def reload_workspace(self) -> None:
        self.query(RELOAD_WORKSPACE)

    def locations(self) -> dict[str, dict[str, Any]]:
        data = self.query(LOCATIONS)["workspaceOrError"]
        if data["__typename"] != "Workspace":
            raise GraphQLError(str(data))
        return {e["name"]: e for e in data["locationEntries"]}

    def loaded_locations(self) -> set[str]:
        out = set()
        for name, entry in self.locations().items():
            loc = entry.get("locationOrLoadError") or {}
            if loc.get("__typename") == "RepositoryLocation":
                out.add(name)
        return out
