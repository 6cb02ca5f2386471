"""A small client for the webserver's GraphQL API: reloads, location states, runs.

dagster-graphql's DagsterGraphQLClient fetches the whole schema on creation;
publishing needs one mutation in a hurry, so this posts the documents directly.
"""

from __future__ import annotations

import time
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
        locationOrLoadError {
          __typename
          ... on RepositoryLocation {
            repositories { name jobs { name } assetNodes { assetKey { path } } }
          }
          ... on PythonError { message causes { message } }
        }
      }
    }
  }
}"""

LAUNCH = """
mutation($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on InvalidStepError { invalidStepKey }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on PipelineNotFoundError { message }
  }
}"""

RUN_STATUS = """
query($id: ID!) { runOrError(runId: $id) { __typename ... on Run { status } } }"""


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

    def load_error(self, location: str) -> str | None:
        """The location's load error as the UI shows it (message and causes), if any."""
        entry = self.locations().get(location) or {}
        loc = entry.get("locationOrLoadError") or {}
        if loc.get("__typename") != "PythonError":
            return None
        causes = [c["message"] for c in loc.get("causes") or []]
        return "\n".join([loc["message"], *causes])

    def asset_keys(self, location: str) -> set[str]:
        entry = self.locations().get(location) or {}
        loc = entry.get("locationOrLoadError") or {}
        keys = set()
        for repo in loc.get("repositories", []) or []:
            for node in repo.get("assetNodes", []):
                keys.add("/".join(node["assetKey"]["path"]))
        return keys

    def launch(self, location: str, job: str, repository: str = "__repository__") -> str:
        params = {
            "selector": {
                "repositoryLocationName": location,
                "repositoryName": repository,
                "jobName": job,
            },
            "runConfigData": {},
        }
        data = self.query(LAUNCH, {"params": params})["launchRun"]
        if data["__typename"] != "LaunchRunSuccess":
            raise GraphQLError(str(data))
        return str(data["run"]["runId"])

    def run_status(self, run_id: str) -> str:
        data = self.query(RUN_STATUS, {"id": run_id})["runOrError"]
        return str(data.get("status", data["__typename"]))

    def wait_run(self, run_id: str, timeout: float = 180.0) -> str:
        deadline = time.monotonic() + timeout
        status = "UNKNOWN"
        while time.monotonic() < deadline:
            status = self.run_status(run_id)
            if status in ("SUCCESS", "FAILURE", "CANCELED"):
                return status
            time.sleep(0.1)
        return status
