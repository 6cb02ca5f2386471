"""Scenario: a launcher in A signs in with a real browser, browses runs in the Dagster
UI through the front door, launches a run in A, and is refused in B.

The launch is the request the Dagster UI's Launchpad sends (LaunchPipelineExecution),
sent from the signed-in page itself: the browser adds the session cookie and the
Origin header exactly as the UI's own requests do.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By

from tests.support.browser import chromium, wait_until
from tests.support.frontdoor import (
    PASSWORD,
    Door,
    dagster_webserver,
    fleet_dir,
    front_door,
)

LAUNCH = """
mutation LaunchPipelineExecution($executionParams: ExecutionParams!) {
  launchPipelineExecution(executionParams: $executionParams) {
    __typename
    ... on LaunchRunSuccess { run { id runId } }
    ... on PythonError { message }
  }
}
"""
FETCH = """
const [location, query, done] = arguments;
fetch("/graphql", {
  method: "POST",
  headers: {"content-type": "application/json"},
  body: JSON.stringify({
    operationName: "LaunchPipelineExecution",
    query,
    variables: {executionParams: {
      selector: {repositoryLocationName: location, repositoryName: "__repository__",
                 pipelineName: "numbers_job"},
      runConfigData: {}, mode: "default"}},
  }),
}).then(async (r) => done({status: r.status, body: await r.json()}))
  .catch((e) => done({status: 0, body: String(e)}));
"""


@pytest.fixture
def door(tmp_path: Path) -> Iterator[Door]:
    with (
        dagster_webserver(tmp_path / "dagster") as web,
        front_door(fleet_dir(tmp_path), web.url) as d,
    ):
        yield d


def launch(driver: Any, location: str) -> dict[str, Any]:
    result: dict[str, Any] = driver.execute_async_script(FETCH, location, LAUNCH)
    return result


def test_launcher_in_a_signs_in_launches_in_a_and_is_refused_in_b(door: Door) -> None:
    driver = chromium()
    driver.set_script_timeout(60)
    try:
        driver.get(f"{door.url}/runs")
        wait_until(driver, lambda d: d.find_elements(By.ID, "username"), 30, "the sign-in page")
        assert "/auth/login?next=%2Fruns" in driver.current_url
        driver.find_element(By.ID, "username").send_keys("lee")
        driver.find_element(By.ID, "password").send_keys(PASSWORD)
        driver.find_element(By.ID, "signin").click()
        wait_until(driver, lambda d: d.current_url == f"{door.url}/runs", 30, "the runs page")
        # The Dagster UI itself renders through the front door (its scripts, GraphQL).
        wait_until(
            driver, lambda d: "Runs" in d.find_element(By.TAG_NAME, "body").text, 90, "the UI"
        )

        allowed = launch(driver, "demo-A")
        assert allowed["status"] == 200, allowed
        result = allowed["body"]["data"]["launchPipelineExecution"]
        assert result["__typename"] == "LaunchRunSuccess", result
        run_id = result["run"]["runId"]

        refused = launch(driver, "demo-B")
        assert refused["status"] == 403, refused
        message = refused["body"]["errors"][0]["message"]
        assert "lee may not launch in location demo-B" in message and "launcher" in message

        driver.get(f"{door.url}/runs/{run_id}")
        wait_until(
            driver,
            lambda d: run_id[:8] in d.find_element(By.TAG_NAME, "body").text,
            90,
            "the launched run's page",
        )
    finally:
        driver.quit()
