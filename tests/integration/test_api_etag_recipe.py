"""Optimistic concurrency as docs/api.md shows it, over real HTTP with curl.

The recipe (`curl -sfI` for the ETag, then a PATCH with `If-Match`) is read from
docs/api.md itself and run by bash against a real uvicorn server, so the page and
the server cannot drift apart. Also: HEAD answers wherever GET does on /repos, and
an empty or malformed If-Match is refused, never taken as "no precondition".
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml

from dagfleet.api import ApiServer, ApiSettings, create_app
from dagfleet.offline import OfflineController
from dagfleet.registry import Registry
from dagfleet.spec.defaults import default_fleet_document
from tests.support.fleetproc import free_port

pytestmark = pytest.mark.integration
ADMIN, READER = "recipe-admin-token", "recipe-read-token"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "api.md"


@dataclass(frozen=True)
class Live:
    api: str  # .../api/v1
    root: Path


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Live]:
    (tmp_path / "fleet.yaml").write_text(yaml.safe_dump(default_fleet_document()))
    (tmp_path / "repos").mkdir()
    Registry(tmp_path).create({"name": "sales", "git_url": "https://git.example.com/sales.git"})
    settings = ApiSettings(fleet_dir=tmp_path, tokens={ADMIN: "admin", READER: "read"})
    server = ApiServer(create_app(settings, OfflineController(tmp_path)), "127.0.0.1", free_port())
    server.start()
    try:
        yield Live(f"{server.url}/api/v1", tmp_path)
    finally:
        server.stop()


def _recipe() -> str:
    """The ETag line of docs/api.md's examples and the PATCH command after it."""
    lines = DOCS.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("ETAG=$(curl -sfI"))
    end = start + 1  # the PATCH, with its continuation lines
    while lines[end].rstrip().endswith("\\"):
        end += 1
    return "\n".join(lines[start : end + 1])


def _run(script: str, live: Live) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "API": live.api, "AUTH": f"Authorization: Bearer {ADMIN}"}
    return subprocess.run(
        ["bash", "-c", script], env=env, capture_output=True, text=True, timeout=30, check=False
    )


def _suspended(live: Live) -> bool:
    doc = yaml.safe_load((live.root / "repos" / "sales.yaml").read_text())
    return bool(doc.get("suspend"))


def test_the_documented_recipe_patches_with_the_etag_it_read(live: Live) -> None:
    recipe = _recipe()
    assert "If-Match" in recipe and "-X PATCH" in recipe, recipe
    done = _run(recipe, live)
    assert done.returncode == 0, done.stderr
    assert _suspended(live)


def test_the_recipe_refuses_a_change_made_meanwhile(live: Live) -> None:
    # Someone changes the repo between the HEAD and the PATCH: the PATCH must fail (412).
    etag_line, patch = _recipe().split("\n", 1)
    other = (
        'curl -sf -H "$AUTH" -H "content-type: application/json" -X PATCH '
        '$API/repos/sales -d \'{"branch":"other"}\' >/dev/null'
    )
    done = _run(f"{etag_line}\n{other} || exit 9\n{patch}", live)
    assert done.returncode == 22, (done.returncode, done.stderr)  # curl -f: HTTP >= 400
    assert not _suspended(live)


def test_head_answers_where_get_does(live: Live) -> None:
    auth = {"Authorization": f"Bearer {READER}"}
    for path in ("/repos", "/repos/sales", "/repos/sales/logs"):
        get = httpx.get(live.api + path, headers=auth)
        head = httpx.head(live.api + path, headers=auth)
        assert head.status_code == get.status_code == 200, (path, head.status_code)
        assert head.content == b""
        assert head.headers["content-type"] == get.headers["content-type"]
    got = httpx.get(f"{live.api}/repos/sales", headers=auth)
    head = httpx.head(f"{live.api}/repos/sales", headers=auth)
    assert head.headers["etag"] == got.headers["etag"] == got.json()["etag"]
    # Same auth as GET, and the same 404s.
    assert httpx.head(f"{live.api}/repos/sales").status_code == 401
    assert httpx.head(f"{live.api}/repos/nope", headers=auth).status_code == 404
    assert httpx.head(f"{live.api}/repos/sales/logs?env=Z", headers=auth).status_code == 404


@pytest.mark.parametrize(
    ("if_match", "status", "says"),
    [
        ("", 412, "If-Match is empty"),
        (",", 412, "If-Match is empty"),
        ("0123abcd", 400, "quoted"),
        ('"abc', 400, "quoted"),
        ('"abc" "def"', 400, "quoted"),
        ('*, "abc"', 400, "'*'"),
    ],
)
@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
def test_empty_or_malformed_if_match_is_refused(
    live: Live, method: str, if_match: str, status: int, says: str
) -> None:
    before = (live.root / "repos" / "sales.yaml").read_text()
    body = {"suspend": True} if method == "PATCH" else None
    if method == "PUT":
        body = {"name": "sales", "git_url": "https://git.example.com/sales.git", "suspend": True}
    headers = {"Authorization": f"Bearer {ADMIN}", "If-Match": if_match}
    resp = httpx.request(method, f"{live.api}/repos/sales", json=body, headers=headers)
    assert resp.status_code == status, resp.text
    assert says in resp.json()["detail"] and "If-Match" in resp.json()["detail"]
    assert (live.root / "repos" / "sales.yaml").read_text() == before


def test_a_good_if_match_still_works(live: Live) -> None:
    headers = {"Authorization": f"Bearer {ADMIN}"}
    etag = httpx.head(f"{live.api}/repos/sales", headers=headers).headers["etag"]
    for form in ("{}", 'W/"nope", {}', "*"):
        value = form.format(etag)
        resp = httpx.patch(
            f"{live.api}/repos/sales",
            json={"suspend": value != "*"},
            headers={**headers, "If-Match": value},
        )
        assert resp.status_code == 200, (value, resp.text)
        etag = resp.headers["etag"]
    assert re.fullmatch(r'"[0-9a-f]{32}"', etag)
