"""The real API app over a real fleet directory: /api/v1/playground (list, get, put, delete).

`RecordingController` is defined here and stands in for the live runtime
(`Reconciler`, whose PlaygroundLoop would serve the files): it records the
`playground_changed` calls the API makes. Files land in the real playground
directory of the fleet's state.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from dagfleet.api import ApiSettings, create_app
from dagfleet.layout import Layout
from dagfleet.offline import OfflineController
from dagfleet.service.playground import MAX_FILE_BYTES

pytestmark = pytest.mark.integration
ADMIN, READER = "admin-token-pg", "read-token-pg"
PG = "/api/v1/playground"
SOURCE = b"from dagster import asset\n\n\n@asset\ndef scratch() -> int:\n    return 7\n"


@dataclass
class RecordingController(OfflineController):
    """Stands in for the live runtime: records which playgrounds the API said changed."""

    fleet_dir: Path
    changed: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(self.fleet_dir)

    def playground_changed(self, env: str) -> None:
        self.changed.append(env)


@pytest.fixture
def fleet_dir(tmp_path: Path) -> Path:
    doc = {
        "name": "test",
        "environments": [{"name": "A", "playground": True}, {"name": "B"}],
    }
    (tmp_path / "fleet.yaml").write_text(yaml.safe_dump(doc))
    (tmp_path / "repos").mkdir()
    return tmp_path


@pytest.fixture
def controller(fleet_dir: Path) -> RecordingController:
    return RecordingController(fleet_dir)


@pytest.fixture
def app_client(fleet_dir: Path, controller: RecordingController) -> Iterator[TestClient]:
    settings = ApiSettings(fleet_dir=fleet_dir, tokens={ADMIN: "admin", READER: "read"})
    with TestClient(create_app(settings, controller)) as c:
        yield c


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def put(client: TestClient, path: str, body: bytes, token: str = ADMIN) -> Any:
    headers = {**auth(token), "Content-Type": "text/x-python"}
    return client.put(f"{PG}{path}", content=body, headers=headers)


def test_roundtrip(
    app_client: TestClient, controller: RecordingController, fleet_dir: Path
) -> None:
    directory = Layout.for_fleet(fleet_dir).playground("A")
    listing = app_client.get(f"{PG}/A", headers=auth(READER))
    assert listing.status_code == 200, listing.text
    assert listing.json()["files"] == []
    assert listing.json()["location"] == "playground-A"

    created = put(app_client, "/A/scratch.py", SOURCE)
    assert created.status_code == 201, created.text
    assert created.json()["created"] is True
    assert created.json()["file"]["size"] == len(SOURCE)
    assert (directory / "scratch.py").read_bytes() == SOURCE
    assert controller.changed == ["A"]

    again = put(app_client, "/A/scratch.py", SOURCE + b"# edited\n")
    assert again.status_code == 200 and again.json()["created"] is False

    got = app_client.get(f"{PG}/A/scratch.py", headers=auth(READER))
    assert got.status_code == 200
    assert got.content == SOURCE + b"# edited\n"
    assert got.headers["content-type"].startswith("text/x-python")

    # Raw bytes work too, and the loader the runtime writes is never listed.
    (directory / "__init__.py").write_text("# loader\n")
    assert put(app_client, "/A/other.py", b"x = 1\n").status_code == 201
    names = [f["name"] for f in app_client.get(f"{PG}/A", headers=auth(READER)).json()["files"]]
    assert names == ["other.py", "scratch.py"]

    deleted = app_client.delete(f"{PG}/A/scratch.py", headers=auth(ADMIN))
    assert deleted.status_code == 200, deleted.text
    assert not (directory / "scratch.py").exists()
    assert controller.changed == ["A", "A", "A", "A"]
    assert app_client.get(f"{PG}/A/scratch.py", headers=auth(READER)).status_code == 404
    assert app_client.delete(f"{PG}/A/scratch.py", headers=auth(ADMIN)).status_code == 404
    # No temp files left behind by the atomic writes.
    assert sorted(p.name for p in directory.iterdir()) == ["__init__.py", "other.py"]


@pytest.mark.parametrize(
    ("method", "token", "status"),
    [
        ("GET", None, 401),
        ("GET", "wrong", 401),
        ("PUT", None, 401),
        ("PUT", READER, 403),
        ("DELETE", READER, 403),
    ],
)
def test_auth(
    app_client: TestClient, controller: RecordingController, method: str, token: Any, status: int
) -> None:
    headers = auth(token) if token else {}
    path = f"{PG}/A" if method == "GET" else f"{PG}/A/x.py"
    resp = app_client.request(method, path, content=b"x = 1\n", headers=headers)
    assert resp.status_code == status, resp.text
    assert controller.changed == []


@pytest.mark.parametrize(
    ("method", "path"), [("GET", "/C"), ("PUT", "/C/x.py"), ("DELETE", "/a/x.py")]
)
def test_unknown_environment(app_client: TestClient, method: str, path: str) -> None:
    resp = app_client.request(method, f"{PG}{path}", content=b"x = 1\n", headers=auth(ADMIN))
    assert resp.status_code == 404, resp.text
    assert "unknown environment" in resp.json()["detail"]
    assert "fleet.yaml defines A, B" in resp.json()["detail"]


def test_environment_without_playground(app_client: TestClient) -> None:
    resp = put(app_client, "/B/x.py", b"x = 1\n")
    assert resp.status_code == 409
    assert "set playground: true on environment B in fleet.yaml" in resp.json()["detail"]


@pytest.mark.parametrize(
    ("url_name", "words"),
    [
        ("%2E%2E%2Fx.py", "path parts"),  # ../x.py, encoded so no client normalises it
        ("a/b.py", "path parts"),
        ("a%2Fb.py", "path parts"),
        ("__init__.py", "loader"),
        ("x.txt", "not a Python file"),
        ("_x.py", "starts with"),
        ("my-file.py", "importable"),
    ],
)
def test_bad_names(
    app_client: TestClient,
    controller: RecordingController,
    fleet_dir: Path,
    url_name: str,
    words: str,
) -> None:
    for resp in (
        put(app_client, f"/A/{url_name}", b"x = 1\n"),
        app_client.get(f"{PG}/A/{url_name}", headers=auth(READER)),
        app_client.delete(f"{PG}/A/{url_name}", headers=auth(ADMIN)),
    ):
        assert resp.status_code == 422, (url_name, resp.status_code, resp.text)
        assert words in resp.json()["detail"]
    assert controller.changed == []
    assert not (fleet_dir / "x.py").exists()
    assert not (fleet_dir / ".dagfleet" / "playground" / "A" / "x.py").exists()


def test_too_big(app_client: TestClient, controller: RecordingController) -> None:
    resp = put(app_client, "/A/big.py", b"#" * (MAX_FILE_BYTES + 1))
    assert resp.status_code == 413, resp.text
    assert controller.changed == []
    assert put(app_client, "/A/fits.py", b"#" * MAX_FILE_BYTES).status_code == 201


def test_openapi_lists_the_routes(app_client: TestClient) -> None:
    paths = app_client.get("/api/v1/openapi.json").json()["paths"]
    assert "/api/v1/playground/{env}" in paths
    assert {"get", "put", "delete"} <= set(paths["/api/v1/playground/{env}/{file}"])
