"""A real headless Chromium for the status page tests: Debian's chromium and chromedriver.

Nothing is downloaded: selenium is pointed at /usr/bin/chromedriver. Without them
the test fails (it is never skipped) and says how to install them.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
INSTALL = "apt-get install -y chromium chromium-driver"


def chromium(width: int = 1280, height: int = 900) -> WebDriver:
    """A headless Chromium; the caller quits it."""
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if shutil.which(p) is None]
    if missing:
        pytest.fail(
            f"the status page tests drive a real browser, and {', '.join(missing)} is missing: "
            f"install Debian's packages with `{INSTALL}` (see README, Development)"
        )
    options = Options()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",  # tests may run as root in containers
        "--disable-dev-shm-usage",
        "--disable-gpu",
        f"--window-size={width},{height}",
    ):
        options.add_argument(arg)
    return webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))


def wait_until(
    driver: WebDriver, check: Callable[[WebDriver], Any], timeout: float, what: str
) -> Any:
    """Poll the page (never reloading it) until `check` gives something truthy."""
    return WebDriverWait(driver, timeout, poll_frequency=0.2).until(
        check, message=f"timed out after {timeout:.0f}s waiting for {what}"
    )


def row_text(driver: WebDriver, location: str) -> str:
    """The visible text of one location's row, as a user reads it."""
    rows = driver.find_elements("id", f"loc-{location}")
    return rows[0].text if rows else ""
