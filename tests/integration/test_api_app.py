"""The real API app over a real fleet directory: CRUD, auth, ETags, limits, hooks, metrics, logs.

The live runtime belongs to `dagfleet up`; `RecordingController` stands in for it,
recording sync/promote/push requests and serving statuses from the real StatusStore.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from fastapi.testclient import TestClient

from dagfleet.api import ApiServer, ApiSettings, SettingsError, create_app, serve
from dagfleet.control import ControlError, PromoteOutcome, SyncOutcome
from dagfleet.layout import Layout
from dagfleet.offline import OfflineController
from dagfleet.spec.defaults import default_fleet_document
from dagfleet.status import LocationStatus, StatusStore
from dagfleet.status.liveness import FleetLock
from tests.support.fleetproc import free_port

pytestmark = pytest.mark.integration
ADMIN, READER, HOOK_SECRET = "admin-token-1", "read-token-1", "hook-secret"
V1 = "/api/v1"


@dataclass
class RecordingController(OfflineController):
    """Stands in for the live runtime (Reconciler): records what the API asked of it."""

    fleet_dir: Path
    calls: list[tuple[Any, ...]] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(self.fleet_dir)

    def registry_changed(self) -> None:
        self.calls.append(("changed",))

    def sync(self, repo: str | None, env: str | None, wait: bool) -> list[SyncOutcome]:
        self.calls.append(("sync", repo, env, wait))
        return [SyncOutcome(f"{repo}-{env or 'A'}", True, "b" * 40, previous="a" * 40)]

    def request_sync_for_push(self, git_url: str, branch: str) -> list[str]:
        self.calls.append(("push", git_url, branch))
        repo = next(r for r in self.fleet().repos.values() if r.git_url == git_url)
        return [f"{repo.name}-{branch}"] if branch in ("A", "B") else []

    def promote(self, repo: str, source: str, target: str, merge: bool) -> PromoteOutcome:
        self.calls.append(("promote", repo, source, target, merge))
        if source == target:
            raise ControlError("source and target are the same environment", 409)
        return PromoteOutcome(repo, source, target, "c" * 40, target, merged=merge)


@pytest.fixture
def fleet_dir(tmp_path: Path) -> Path:
    (tmp_path / "fleet.yaml").write_text(yaml.safe_dump(default_fleet_document()))
    (tmp_path / "repos").mkdir()
    return tmp_path


@pytest.fixture
def controller(fleet_dir: Path) -> RecordingController:
    return RecordingController(fleet_dir)


def _settings(fleet_dir: Path, **kw: Any) -> ApiSettings:
    return ApiSettings(
        fleet_dir=fleet_dir,
        tokens={ADMIN: "admin", READER: "read"},
        webhook_secret=HOOK_SECRET,
        **kw,
    )


@pytest.fixture
def client(fleet_dir: Path, controller: RecordingController) -> Iterator[TestClient]:
    app = create_app(_settings(fleet_dir, status_cache_seconds=0), controller)
    with TestClient(app, headers={"Authorization": f"Bearer {ADMIN}"}) as c:
        yield c


def _repo(name: str = "sales", **extra: Any) -> dict[str, Any]:
    return {"name": name, "git_url": f"https://git.example.com/{name}.git", **extra}


def test_crud_round_trip_with_etags(client: TestClient, controller: RecordingController) -> None:
    env = [{"name": "TOKEN", "from_env": "SALES_TOKEN"}]
    resp = client.post(f"{V1}/repos", json=_repo(branch="main", environment=env))
    assert resp.status_code == 201, resp.text
    etag = resp.headers["etag"]
    assert resp.json()["locations"] == ["sales-A", "sales-B"]
    assert resp.headers["location"] == f"{V1}/repos/sales"
    assert ("changed",) in controller.calls
    got = client.get(f"{V1}/repos/sales")
    assert got.headers["etag"] == etag == got.json()["etag"]
    # Secrets are references: the API shows the variable name, never a value.
    assert got.json()["spec"]["environment"] == [
        {"name": "TOKEN", "value": None, "from_env": "SALES_TOKEN", "from_file": None}
    ]
    assert [r["name"] for r in client.get(f"{V1}/repos").json()] == ["sales"]

    patched = client.patch(f"{V1}/repos/sales", json={"suspend": True}, headers={"If-Match": etag})
    assert patched.status_code == 200 and patched.json()["suspended"]
    stale = client.patch(f"{V1}/repos/sales", json={"branch": "x"}, headers={"If-Match": etag})
    assert stale.status_code == 412
    put = client.put(
        f"{V1}/repos/sales",
        json=_repo(branch="dev"),
        headers={"If-Match": patched.headers["etag"]},
    )
    assert put.status_code == 200 and put.json()["spec"]["branch"] == "dev"
    assert not put.json()["suspended"]
    on_disk = yaml.safe_load(
        (client.app.state.ctx.service.registry.root / "repos/sales.yaml").read_text()
    )  # type: ignore[attr-defined]
    assert on_disk == {"name": "sales", "git_url": _repo()["git_url"], "branch": "dev"}
    assert client.delete(f"{V1}/repos/sales").status_code == 200
    assert client.get(f"{V1}/repos/sales").status_code == 404


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "field"),
    [
        ("POST", "/repos", _repo(name="Bad"), 422, "name"),
        ("POST", "/repos", _repo(branch="a b"), 422, "branch"),
        ("POST", "/repos", _repo(python_file="../x.py"), 422, "python_file"),
        ("POST", "/repos", _repo(working_directory="-rf"), 422, "working_directory"),
        (
            "POST",
            "/repos",
            _repo(environment=[{"name": "A-B", "value": "1"}]),
            422,
            "environment[0].name",
        ),
        ("POST", "/repos", _repo(branches={"Z": "main"}), 422, "branches.Z"),
        (
            "POST",
            "/repos",
            _repo(environment=[{"name": "X", "from_file": "../../etc/shadow"}]),
            422,
            "environment[0].from_file",
        ),
        ("PATCH", "/repos/sales", {"attribute": "-h"}, 422, "attribute"),
        ("POST", "/repos", {"git_url": "/x"}, 422, "name"),
        ("POST", "/repos", _repo(extra=1), 422, "extra"),
        ("PUT", "/repos/sales", _repo(name="other"), 422, "name"),
        ("PATCH", "/repos/sales", {"git_url": "ext::sh"}, 422, "git_url"),
        ("POST", "/repos", _repo(), 409, None),
        ("GET", "/repos/nope", None, 404, None),
        ("PUT", "/repos/nope", _repo(name="nope"), 404, None),
        ("PATCH", "/repos/nope", {}, 404, None),
        ("DELETE", "/repos/nope", None, 404, None),
        ("GET", "/locations/nope", None, 404, None),
        ("GET", "/repos/sales/logs?env=Z", None, 404, None),
        ("GET", "/repos/sales/logs?tail=-1", None, 422, "tail"),
        ("POST", "/promote", {"repo": "sales", "source": "A", "target": "A"}, 409, None),
        ("POST", "/promote", {"repo": "sales", "source": "../A", "target": "B"}, 422, "source"),
        ("POST", "/promote", {"repo": "nope", "source": "A", "target": "B"}, 404, None),
    ],
)
def test_errors_name_the_field(
    client: TestClient, method: str, path: str, body: Any, status: int, field: str | None
) -> None:
    assert client.post(f"{V1}/repos", json=_repo()).status_code == 201
    resp = client.request(method, V1 + path, json=body)
    assert resp.status_code == status, resp.text
    payload = resp.json()
    assert payload["detail"]
    if field is not None:
        assert field in [p["field"] for p in payload["problems"]], payload


@pytest.mark.parametrize(
    ("token", "method", "path", "status"),
    [
        (None, "GET", "/repos", 401),
        ("wrong-token", "GET", "/repos", 401),
        (READER, "GET", "/repos", 200),
        (READER, "GET", "/locations", 200),
        (READER, "GET", "/metrics", 200),
        (READER, "POST", "/repos", 403),
        (READER, "DELETE", "/repos/sales", 403),
        (READER, "POST", "/repos/sales/sync", 403),
        (None, "GET", "/healthz", 200),
        (None, "GET", "/readyz", 200),
        (None, "GET", "/openapi.json", 200),
        (ADMIN, "POST", "/repos/sales/sync", 200),
    ],
)
def test_auth(
    fleet_dir: Path,
    controller: RecordingController,
    token: str | None,
    method: str,
    path: str,
    status: int,
) -> None:
    app = create_app(_settings(fleet_dir), controller)
    with TestClient(app) as c:
        headers = {"Authorization": f"Bearer {ADMIN}"}
        assert c.post(f"{V1}/repos", json=_repo(), headers=headers).status_code == 201
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        body = _repo("other") if method == "POST" else None
        resp = c.request(method, V1 + path, headers=headers, json=body)
        assert resp.status_code == status, resp.text
        if status == 401:
            assert resp.headers["www-authenticate"] == "Bearer"


def test_no_tokens_means_open_on_loopback(fleet_dir: Path, controller: RecordingController) -> None:
    with TestClient(create_app(ApiSettings(fleet_dir=fleet_dir), controller)) as c:
        assert c.post(f"{V1}/repos", json=_repo()).status_code == 201


def test_bodies_over_one_mib_are_refused(client: TestClient) -> None:
    big = _repo(environment=[{"name": f"V{i}", "value": "x" * 1000} for i in range(1100)])
    resp = client.post(f"{V1}/repos", json=big)
    assert resp.status_code == 413
    chunked = client.post(
        f"{V1}/repos",
        content=iter([b"{" + b" " * (1 << 20), b"}"]),
        headers={"content-type": "application/json"},
    )
    assert chunked.status_code == 413
    root = client.app.state.ctx.service.registry.root  # type: ignore[attr-defined]
    assert list((root / "repos").iterdir()) == []


def test_sync_promote_environments(client: TestClient, controller: RecordingController) -> None:
    client.post(f"{V1}/repos", json=_repo())
    resp = client.post(f"{V1}/repos/sales/sync", params={"env": "B"})
    assert resp.json() == {
        "repo": "sales",
        "outcomes": [
            {
                "location": "sales-B",
                "changed": True,
                "commit": "b" * 40,
                "previous": "a" * 40,
                "error": None,
                "reason": None,
            }
        ],
    }
    assert ("sync", "sales", "B", True) in controller.calls
    resp = client.post(f"{V1}/promote", json={"repo": "sales", "source": "A", "target": "B"})
    assert resp.status_code == 200 and resp.json()["target_branch"] == "B"
    envs = client.get(f"{V1}/environments").json()
    assert [(e["name"], e["locations"]) for e in envs] == [
        ("A", ["sales-A", "playground-A"]),
        ("B", ["sales-B", "playground-B"]),
    ]


def test_offline_controller_refuses_to_sync(fleet_dir: Path) -> None:
    app = create_app(ApiSettings(fleet_dir=fleet_dir), OfflineController(fleet_dir))
    with TestClient(app) as c:
        c.post(f"{V1}/repos", json=_repo())
        resp = c.post(f"{V1}/repos/sales/sync")
        assert resp.status_code == 503 and "dagfleet up" in resp.json()["detail"]


def _github(body: bytes, secret: str = HOOK_SECRET) -> dict[str, str]:
    sig = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"X-Hub-Signature-256": f"sha256={sig}", "X-GitHub-Event": "push"}


def _gitea(body: bytes, secret: str = HOOK_SECRET) -> dict[str, str]:
    sig = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"X-Gitea-Signature": sig, "X-Gitea-Event": "push"}


def _gitlab(body: bytes, secret: str = HOOK_SECRET) -> dict[str, str]:
    return {"X-Gitlab-Token": secret, "X-Gitlab-Event": "Push Hook"}


def _payload(url: str, ref: str, gitlab: bool = False) -> bytes:
    key = "project" if gitlab else "repository"
    field_ = "git_http_url" if gitlab else "clone_url"
    return json.dumps({"ref": ref, key: {field_: url}}).encode()


@pytest.mark.parametrize("sign", [_github, _gitea, _gitlab])
@pytest.mark.parametrize(
    ("url", "ref", "status", "locations"),
    [
        ("https://git.example.com/sales.git", "refs/heads/A", 200, ["sales-A"]),
        ("https://git.example.com/sales", "refs/heads/B", 200, ["sales-B"]),
        ("https://git.example.com/sales.git", "refs/heads/feature", 202, []),
        ("https://git.example.com/sales.git", "refs/tags/v1", 202, []),
        ("https://git.example.com/unknown.git", "refs/heads/A", 202, []),
    ],
)
def test_webhooks(
    client: TestClient,
    controller: RecordingController,
    sign: Any,
    url: str,
    ref: str,
    status: int,
    locations: list[str],
) -> None:
    client.post(f"{V1}/repos", json=_repo())
    body = _payload(url, ref, gitlab=sign is _gitlab)
    resp = client.post(f"{V1}/hooks/git", content=body, headers={**sign(body), "Authorization": ""})
    assert resp.status_code == status, resp.text
    assert resp.json()["locations"] == locations
    assert resp.json()["accepted"] is (status == 200)
    bad = client.post(f"{V1}/hooks/git", content=body, headers=sign(body, "wrong"))
    assert bad.status_code == 401
    tampered = client.post(f"{V1}/hooks/git", content=body + b" ", headers=sign(body))
    assert tampered.status_code == (status if sign is _gitlab else 401)
    unsigned = client.post(f"{V1}/hooks/git", content=body)
    assert unsigned.status_code == 401


def _status(name: str, ready: bool) -> LocationStatus:
    s = LocationStatus(
        location=name,
        repo=name.rsplit("-", 1)[0],
        env=name.rsplit("-", 1)[1],
        commit="d" * 40,
        sync_duration_seconds=2.5,
        last_successful_sync="2024-01-01T00:00:00+00:00",
        failures=3,
    )
    return s.with_condition("Serving", "True" if ready else "False", "CodeServerRunning")


def test_locations_and_metrics_read_statuses(client: TestClient, fleet_dir: Path) -> None:
    # The statuses a running fleet wrote: its lock is held (else they read as stopped).
    lock = FleetLock.acquire(Layout.for_fleet(fleet_dir), fleet_dir)
    try:
        _locations_and_metrics(client, fleet_dir)
    finally:
        lock.release()


def _locations_and_metrics(client: TestClient, fleet_dir: Path) -> None:
    client.post(f"{V1}/repos", json=_repo())
    store = StatusStore(Layout.for_fleet(fleet_dir).status)
    store.write(_status("sales-A", True))
    store.write(_status("sales-B", False))
    store.write(_status("gone-A", True))  # a repo no longer registered: not shown
    names = [s["location"] for s in client.get(f"{V1}/locations").json()]
    assert names == ["sales-A", "sales-B"]
    one = client.get(f"{V1}/locations/sales-A").json()
    assert one["commit"] == "d" * 40 and one["conditions"][-1]["type"] == "Ready"
    text = client.get(f"{V1}/metrics").text
    assert 'dagfleet_location_ready{env="A",location="sales-A",repo="sales"} 1.0' in text
    assert 'dagfleet_location_ready{env="B",location="sales-B",repo="sales"} 0.0' in text
    assert (
        'dagfleet_location_sync_failures_total{env="A",location="sales-A",repo="sales"} 3.0' in text
    )
    assert "dagfleet_location_sync_duration_seconds" in text and "gone-A" not in text


def test_readyz_follows_the_instance(fleet_dir: Path, controller: RecordingController) -> None:
    ready = threading.Event()
    with TestClient(create_app(ApiSettings(fleet_dir=fleet_dir), controller, ready.is_set)) as c:
        assert c.get(f"{V1}/readyz").status_code == 503
        ready.set()
        assert c.get(f"{V1}/readyz").json()["status"] == "ready"


def test_logs_tail(client: TestClient, fleet_dir: Path) -> None:
    client.post(f"{V1}/repos", json=_repo())
    logs = Layout.for_fleet(fleet_dir).logs
    logs.mkdir(parents=True)
    (logs / "sales-A.log").write_text("".join(f"a{i}\n" for i in range(10)))
    (logs / "sales-B.log").write_text("b0\n")
    assert client.get(f"{V1}/repos/sales/logs", params={"env": "A", "tail": 2}).text == "a8\na9\n"
    both = client.get(f"{V1}/repos/sales/logs", params={"tail": 1}).text
    assert both == "[sales-A] a9\n[sales-B] b0\n"

    # A repo limited to A has no location in B: 404, not an empty log.
    client.post(f"{V1}/repos", json=_repo("only-a", environments=["A"]))
    resp = client.get(f"{V1}/repos/only-a/logs", params={"env": "B"})
    assert resp.status_code == 404
    assert "no location in environment 'B'" in resp.text


def test_bind_refusal_and_server_lifecycle(
    fleet_dir: Path, controller: RecordingController
) -> None:
    with pytest.raises(SettingsError, match="without authentication"):
        serve(ApiSettings(fleet_dir=fleet_dir, host="0.0.0.0"), controller)
    server = serve(ApiSettings(fleet_dir=fleet_dir, port=free_port()), controller)
    try:
        health = httpx.get(f"{server.url}{V1}/healthz").json()
        # The fleet names itself, so a CLI pointed elsewhere can refuse to change it.
        fleet_id = (fleet_dir / ".dagfleet" / "fleet-id").read_text().strip()
        assert health == {"status": "ok", "detail": "", "fleet": "dagfleet", "fleet_id": fleet_id}
        identity = httpx.get(f"{server.url}{V1}/fleet").json()
        assert identity["id"] == fleet_id and identity["root"] == str(fleet_dir.resolve())
    finally:
        server.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{server.url}{V1}/healthz")


def test_logs_follow_streams_over_real_uvicorn(
    fleet_dir: Path, controller: RecordingController
) -> None:
    settings = ApiSettings(fleet_dir=fleet_dir, follow_poll_seconds=0.05)
    server = ApiServer(create_app(settings, controller), "127.0.0.1", free_port())
    server.start()
    try:
        with httpx.Client(base_url=server.url + V1) as http:
            http.post("/repos", json=_repo())
            log = Layout.for_fleet(fleet_dir).log("sales-A")
            log.parent.mkdir(parents=True)
            log.write_text("old\n")
            seen = b""
            params = {"env": "A", "follow": "true", "tail": "5"}
            with http.stream("GET", "/repos/sales/logs", params=params, timeout=10) as resp:
                assert resp.status_code == 200
                chunks = resp.iter_bytes()
                seen += next(chunks)
                with log.open("a") as fh:
                    fh.write("new line\npartial")
                    fh.flush()
                    deadline = time.monotonic() + 5
                    while b"new line\n" not in seen and time.monotonic() < deadline:
                        seen += next(chunks)
                    fh.write(" done\n")
                while b"partial done\n" not in seen and time.monotonic() < deadline:
                    seen += next(chunks)
            assert seen == b"old\nnew line\npartial done\n"
    finally:
        server.stop()  # must not hang on the follower the client just left
