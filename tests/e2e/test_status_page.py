"""Scenario: someone keeps the status page open in a browser while the fleet runs.

The page lists the locations Ready; a new commit goes live, a broken one is
rejected (DefinitionsInvalid, naming the commit) and shown within seconds, and
a rollback clicked on the page serves the previous commit again, all without
reloading the page. Real `dagfleet up`, real headless Chromium (Debian's).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from tests.e2e.conftest import demo_fleet, with_asset
from tests.support.browser import chromium, row_text, wait_until
from tests.support.gitrepo import CodeRepo

UPDATE = 30  # seconds: the page polls every 2 s; the rest is the fleet's own work


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    driver = chromium()
    yield driver
    driver.quit()


def _cell(driver: WebDriver, location: str, column: str) -> str:
    """The text of one location's cell in the column headed `column`."""
    heads = [th.text for th in driver.find_elements(By.CSS_SELECTOR, "#fleet thead th")]
    cells = driver.find_elements(By.CSS_SELECTOR, f"#loc-{location} > *")
    return cells[heads.index(column)].text if column in heads and cells else ""


def _synced(driver: WebDriver, location: str) -> str:
    return _cell(driver, location, "Synced")


def _live(driver: WebDriver, location: str) -> str:
    return _cell(driver, location, "Live commit")


def test_status_page_follows_the_fleet(
    tmp_path: Path, code_repo: CodeRepo, start_fleet, browser: WebDriver
) -> None:
    fleet = start_fleet(demo_fleet(tmp_path, code_repo), extra=["--no-daemon"])
    fleet.wait_loaded({"demo-A", "demo-B"})
    for location in ("demo-A", "demo-B"):
        fleet.wait_synced_reason(location, "Published", 60)
    first = code_repo.tip("A")
    page = fleet.api.removesuffix("/api/v1") + "/"

    # The first render already lists every location (server-rendered), Ready in words.
    browser.get(page)
    for location in ("demo-A", "demo-B"):
        text = row_text(browser, location)
        assert "✓ Ready" in text and first[:12] in text, text
    assert browser.find_element(By.TAG_NAME, "caption").text.startswith("Locations (2 of 2 Ready)")
    browser.execute_script("window.sameDocument = true")  # gone if the page reloads

    # A good push goes live: the page shows the new commit by itself.
    second = code_repo.commit({"demo/definitions.py": with_asset("five")}, "add five")
    code_repo.push("A")
    wait_until(browser, lambda d: second[:12] in _live(d, "demo-A"), 90, "the new commit live")

    # A broken push: clicking Sync starts it; the page shows it rejected, and still Ready.
    bad = code_repo.commit({"demo/definitions.py": "def broken(:\n"}, "oops <b>bold</b>")
    code_repo.push("A")
    browser.find_element(By.CSS_SELECTOR, "button[aria-label='Sync demo-A']").click()
    wait_until(
        browser,
        lambda d: "DefinitionsInvalid" in _synced(d, "demo-A") and bad[:12] in _synced(d, "demo-A"),
        UPDATE + 60,
        "the rejected commit on the page",
    )
    assert "✗ Not synced" in _synced(browser, "demo-A")
    assert "✓ Ready" in row_text(browser, "demo-A")
    assert second[:12] in _live(browser, "demo-A")

    # The history of demo-A, from the publish history.
    browser.find_element(By.CSS_SELECTOR, "button[aria-label='History of demo-A']").click()
    history = wait_until(
        browser,
        lambda d: (t := d.find_element(By.ID, "history-body").text) and bad[:12] in t and t,
        UPDATE,
        "the history of demo-A",
    )
    assert "failed" in history and "published" in history and "oops <b>bold</b>" in history

    # Roll back from the page: the commit before the current one is served again.
    routes = httpx.get(f"{fleet.api}/openapi.json").json()["paths"]
    assert "/api/v1/locations/{name}/rollback" in routes
    browser.find_element(By.CSS_SELECTOR, "button[aria-label='Roll back demo-A']").click()
    browser.switch_to.alert.accept()
    wait_until(browser, lambda d: first[:12] in _live(d, "demo-A"), UPDATE + 60, "the rollback")
    assert fleet.commit("demo-A") == first
    result = browser.find_element(By.ID, "action-result").text
    assert f"back to {first[:12]}" in result, result
    assert browser.execute_script("return window.sameDocument") is True
