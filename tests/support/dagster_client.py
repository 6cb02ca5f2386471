"""What tests and benchmarks ask the Dagster webserver beyond what dagfleet itself needs:
launch a job and wait for its run, the asset keys and the load error of a location.

dagfleet's own client (dagfleet.runtime.graphql) only reloads and lists locations;
this subclass adds the queries only tests and bench/ use, posted the same way.
"""

from __future__ import annotations

import time
from typing import Any

from dagfleet.runtime.graphql import DagsterWebserver, GraphQLError

LOCATION_DETAILS = """
query {
  workspaceOrError {
    __typename
    ... on Workspace {
      locationEntries {
        name
        locationOrLoadError {
          __typename
          ... on RepositoryLocation {
            repositories { name assetNodes { assetKey { path } } }
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

FINISHED = ("SUCCESS", "FAILURE", "CANCELED")


class DagsterTestClient(DagsterWebserver):
    def _location(self, location: str) -> dict[str, Any]:
        """The location's `locationOrLoadError` with repositories and assets ({} if absent)."""
        data = self.query(LOCATION_DETAILS)["workspaceOrError"]
        if data["__typename"] != "Workspace":
            raise GraphQLError(str(data))
        for entry in data["locationEntries"]:
            if entry["name"] == location:
                return dict(entry.get("locationOrLoadError") or {})
        return {}

    def load_error(self, location: str) -> str | None:
        """The location's load error as the UI shows it (message and causes), if any."""
        loc = self._location(location)
        if loc.get("__typename") != "PythonError":
            return None
        causes = [c["message"] for c in loc.get("causes") or []]
        return "\n".join([loc["message"], *causes])

    def asset_keys(self, location: str) -> set[str]:
        """The asset keys the location serves, as `a/b` paths."""
        keys = set()
        for repo in self._location(location).get("repositories") or []:
            for node in repo.get("assetNodes", []):
                keys.add("/".join(node["assetKey"]["path"]))
        return keys

    def launch(self, location: str, job: str, repository: str = "__repository__") -> str:
        """Launch `job` of the location with empty run config; the run ID."""
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
        """The run's final status, or its status when `timeout` seconds have passed."""
        deadline = time.monotonic() + timeout
        status = "UNKNOWN"
        while time.monotonic() < deadline:
            status = self.run_status(run_id)
            if status in FINISHED:
                return status
            time.sleep(0.1)
        return status
