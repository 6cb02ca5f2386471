"""The status page served by the real app: every location, escaping, links, auth, ETags."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from dagfleet.api import ApiServer, ApiSettings, create_app
from dagfleet.layout import Layout
from dagfleet.offline import OfflineController
from dagfleet.registry import Registry
from dagfleet.spec.defaults import default_fleet_document
from dagfleet.status import LocationStatus, Reason, StatusStore
from dagfleet.status.liveness import FleetLock
from tests.support.fleetproc import free_port

pytestmark = pytest.mark.integration
ADMIN, READER = "admin-token-1", "read-token-1"
GOOD, BAD = "1" * 40, "2" * 40
EVIL = "<script>alert('x')</script> & \"quotes\""
REMOTES = {
    "sales": "https://github.com/acme/sales.git",
    "ops": "git@gitlab.com:acme/ops.git",
    "local": "file:///srv/git/local.git",
}


@pytest.fixture
def fleet_dir(tmp_path: Path) -> Iterator[Path]:
    doc = default_fleet_document()
    doc["environments"] = [{"name": "A", "branch": "A"}, {"name": "B", "playground": True}]
    (tmp_path / "fleet.yaml").write_text(yaml.safe_dump(doc))
    (tmp_path / "repos").mkdir()
    registry = Registry(tmp_path)
    store = StatusStore(Layout.for_fleet(tmp_path).status)
    for repo, url in REMOTES.items():
        registry.create({"name": repo, "git_url": url})
        for env in ("A", "B"):
            status = LocationStatus(
                location=f"{repo}-{env}", repo=repo, env=env, ref=env, commit=GOOD, debug_port=5678
            )
            status = status.with_condition("Serving", "True", Reason.CODE_SERVER_RUNNING)
            status = status.with_condition("Synced", "True", Reason.PUBLISHED)
            store.write(status)
    broken = store.read("sales-A")
    assert broken is not None
    message = f"commit {BAD[:12]} ({EVIL}): SyntaxError"
    store.write(broken.with_condition("Synced", "False", Reason.DEFINITIONS_INVALID, message))
    playground = LocationStatus(location="playground-B", repo="playground", env="B")
    store.write(playground.with_condition("Serving", "True", Reason.CODE_SERVER_RUNNING))
    # Held as `dagfleet up` holds it, so the statuses are served as written (not "stopped").
    lock = FleetLock.acquire(Layout.for_fleet(tmp_path), tmp_path)
    yield tmp_path
    lock.release()


class LiveLike(OfflineController):
    """Also serves the playground's status, as the live reconciler does (the offline
    controller lists the locations of repo files only)."""

    def statuses(self) -> list[LocationStatus]:
        playground = [s for s in StatusStore(self.layout.status).all() if s.repo == "playground"]
        return [*super().statuses(), *playground]


def _client(fleet_dir: Path, **settings: Any) -> TestClient:
    app = create_app(
        ApiSettings(fleet_dir=fleet_dir, status_cache_seconds=0, **settings),
        LiveLike(fleet_dir),
    )
    return TestClient(app)


@pytest.fixture
def open_client(fleet_dir: Path) -> Iterator[TestClient]:
    with _client(fleet_dir) as c:
        yield c


@pytest.fixture
def token_client(fleet_dir: Path) -> Iterator[TestClient]:
    with _client(fleet_dir, tokens={ADMIN: "admin", READER: "read"}) as c:
        yield c


def _rows(page: str) -> list[str]:
    return re.findall(r'<tr id="loc-([^"]+)"', page)


def test_first_render_holds_every_location(open_client: TestClient) -> None:
    resp = open_client.get("/")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in resp.headers["content-security-policy"]
    page = resp.text
    expected = [f"{r}-{e}" for r in sorted(REMOTES) for e in ("A", "B")] + ["playground-B"]
    assert sorted(_rows(page)) == sorted(expected)
    assert "<caption>Playground locations" in page
    assert '<th scope="row">sales-A</th>' in page
    assert "DefinitionsInvalid" in page and BAD[:12] in page
    assert "✓ Ready" in page and "✗ Not synced" in page  # words, not only colour
    assert "<td>5678</td>" in page  # debug port
    # The ETag the script starts polling with is the one /locations answers with.
    etag = open_client.get("/api/v1/locations").headers["etag"]
    assert f'data-etag="{etag.replace(chr(34), "&quot;")}"' in page
    for asset in ("/static/status.js", "/static/status.css"):
        assert asset in page and open_client.get(asset).status_code == 200


def test_commit_messages_are_escaped(open_client: TestClient) -> None:
    page = open_client.get("/").text
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; &quot;quotes&quot;" in page
    assert open_client.get("/page/fleet").text.count("&lt;script&gt;") == 1


def test_commits_link_to_known_web_hosts_only(open_client: TestClient) -> None:
    page = open_client.get("/").text
    assert f'href="https://github.com/acme/sales/commit/{GOOD}"' in page
    assert f'href="https://gitlab.com/acme/ops/-/commit/{GOOD}"' in page
    local = page.split('<tr id="loc-local-A"', 1)[1].split("</tr>", 1)[0]
    assert GOOD[:12] in local and "href" not in local
    assert page.count("<a href=") == 4  # sales and ops, A and B


def test_actions_follow_the_role(token_client: TestClient) -> None:
    signed_out = token_client.get("/")
    assert signed_out.status_code == 200
    assert 'id="signin"' in signed_out.text
    assert not _rows(signed_out.text) and "sales-A" not in signed_out.text  # no data without one
    assert token_client.get("/page/fleet").status_code == 401
    assert token_client.get("/page/fleet", headers=_bearer("nope")).status_code == 401

    read = token_client.get("/page/fleet", headers=_bearer(READER))
    assert read.status_code == 200 and "sales-A" in read.text
    assert 'data-action="history"' in read.text
    assert 'data-action="sync"' not in read.text and 'data-action="rollback"' not in read.text
    assert 'id="promote"' not in read.text
    admin = token_client.get("/", headers=_bearer(ADMIN)).text
    assert '<tr id="loc-sales-A" class="ready" data-repo="sales" data-env="A"' in admin
    assert 'aria-label="Sync sales-A">Sync</button>' in admin
    assert 'aria-label="Roll back sales-A">Roll back</button>' in admin and 'id="promote"' in admin
    playground = admin.split('<tr id="loc-playground-B"', 1)[1].split("</tr>", 1)[0]
    assert 'data-action="sync"' not in playground


def test_whoami(token_client: TestClient, open_client: TestClient) -> None:
    assert token_client.get("/api/v1/whoami").status_code == 401
    read = token_client.get("/api/v1/whoami", headers=_bearer(READER)).json()
    assert read["role"] == "viewer" and read["tokens"] is True  # `read` tokens are viewers
    assert read["grants"] == ["viewer fleet-wide"] and read["name"].startswith("token:")
    admin = token_client.get("/api/v1/whoami", headers=_bearer(ADMIN)).json()
    assert admin["role"] == "admin" and admin["tokens"] is True
    assert open_client.get("/api/v1/whoami").json() == {
        "name": "local",
        "role": "admin",
        "grants": ["admin fleet-wide"],
        "tokens": False,
    }


def test_unchanged_locations_cost_a_304(open_client: TestClient, fleet_dir: Path) -> None:
    first = open_client.get("/api/v1/locations")
    etag = first.headers["etag"]
    again = open_client.get("/api/v1/locations", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
    assert open_client.get("/api/v1/locations", headers={"If-None-Match": '"x"'}).status_code == 200

    store = StatusStore(Layout.for_fleet(fleet_dir).status)
    status = store.read("ops-A")
    assert status is not None
    store.write(status.model_copy(update={"commit": BAD}))
    changed = open_client.get("/api/v1/locations", headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["etag"] != etag
    assert BAD in changed.text


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_signing_in_in_a_real_browser(fleet_dir: Path) -> None:
    """Headless Chromium: the page asks for a token, shows what the token's role allows,
    announces nothing it should not, and a refused token is said so."""
    from selenium.webdriver.common.by import By

    from tests.support.browser import chromium, wait_until

    settings = ApiSettings(fleet_dir=fleet_dir, tokens={ADMIN: "admin", READER: "read"})
    server = ApiServer(create_app(settings, LiveLike(fleet_dir)), "127.0.0.1", free_port())
    server.start()
    driver = chromium()
    try:
        driver.get(server.url + "/")
        assert not driver.find_elements(By.CSS_SELECTOR, "#fleet tr")

        def sign_in(token: str) -> None:
            driver.find_element(By.ID, "token").send_keys(token)
            driver.find_element(By.CSS_SELECTOR, "#signin button").click()

        sign_in("wrong")
        wait_until(
            driver,
            lambda d: "Sign-in failed" in d.find_element(By.ID, "action-result").text,
            10,
            "the refusal",
        )
        driver.find_element(By.ID, "token").clear()
        sign_in(READER)
        wait_until(driver, lambda d: d.find_elements(By.ID, "loc-sales-A"), 10, "the rows")
        assert "viewer token" in driver.find_element(By.ID, "who").text
        assert driver.find_elements(By.CSS_SELECTOR, "button[data-action='history']")
        assert not driver.find_elements(By.CSS_SELECTOR, "button[data-action='sync']")
        assert not driver.find_elements(By.ID, "promote")
        assert EVIL in driver.find_element(By.ID, "loc-sales-A").text  # shown as text

        driver.find_element(By.ID, "signout").click()
        wait_until(driver, lambda d: d.find_elements(By.ID, "signin"), 10, "the sign-in form")
        sign_in(ADMIN)
        wait_until(driver, lambda d: d.find_elements(By.ID, "promote"), 10, "the admin actions")
        assert len(driver.find_elements(By.CSS_SELECTOR, "button[data-action='sync']")) == 6
    finally:
        driver.quit()
        server.stop()
