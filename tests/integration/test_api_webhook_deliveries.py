"""Push webhooks over real HTTP with real signatures: replays, several signatures, shared URLs.

`PushController` stands in for the live runtime (the reconciler) with its rule for a
push: every location whose repo has the pushed URL (as `same_url` compares them) and
follows the pushed branch is asked to sync. It records each request, so a replay
that syncs a second time is seen.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from dagfleet.api import ApiServer, ApiSettings, create_app
from dagfleet.control import ControlError
from dagfleet.gitops.urls import same_url
from dagfleet.offline import OfflineController
from dagfleet.registry import Registry
from dagfleet.spec.defaults import default_fleet_document
from tests.support.fleetproc import free_port

pytestmark = pytest.mark.integration
SECRET = "deliveries-secret"
URL = "https://git.example.com/acme/shared.git"


@dataclass
class PushController(OfflineController):
    fleet_dir: Path
    pushes: list[tuple[str, str]] = field(default_factory=list)
    refuse: bool = False  # as a fleet that is not running: 503

    def __post_init__(self) -> None:
        super().__init__(self.fleet_dir)

    def request_sync_for_push(self, git_url: str, branch: str) -> list[str]:
        if self.refuse:
            raise ControlError("no running fleet", 503)
        self.pushes.append((git_url, branch))
        fleet = self.fleet()
        hit = []
        for repo in fleet.repos.values():
            if not same_url(repo.git_url, git_url):
                continue
            for env in fleet.spec.environments:
                if repo.ref_for(env) == branch:
                    hit += repo.location_names(env.name)
        return hit


@dataclass(frozen=True)
class Hooks:
    url: str
    controller: PushController
    registry: Registry

    def post(self, body: bytes, headers: dict[str, str]) -> httpx.Response:
        return httpx.post(self.url, content=body, headers=headers, timeout=10)


@pytest.fixture
def hooks(tmp_path: Path) -> Iterator[Hooks]:
    (tmp_path / "fleet.yaml").write_text(yaml.safe_dump(default_fleet_document()))
    (tmp_path / "repos").mkdir()
    controller = PushController(tmp_path)
    settings = ApiSettings(fleet_dir=tmp_path, tokens={"t": "admin"}, webhook_secret=SECRET)
    server = ApiServer(create_app(settings, controller), "127.0.0.1", free_port())
    server.start()
    try:
        yield Hooks(f"{server.url}/api/v1/hooks/git", controller, Registry(tmp_path))
    finally:
        server.stop()


def _body(branch: str = "A", url: str = URL, **extra: Any) -> bytes:
    payload = {"ref": f"refs/heads/{branch}", "repository": {"clone_url": url}, **extra}
    return json.dumps(payload).encode()


def _hex(body: bytes, secret: str = SECRET) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def github(body: bytes, delivery: str | None = None, secret: str = SECRET) -> dict[str, str]:
    return {
        "X-Hub-Signature-256": f"sha256={_hex(body, secret)}",
        "X-GitHub-Event": "push",
        "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
    }


def gitea(body: bytes, delivery: str | None = None, secret: str = SECRET) -> dict[str, str]:
    return {
        "X-Gitea-Signature": _hex(body, secret),
        "X-Gitea-Event": "push",
        "X-Gitea-Delivery": delivery or str(uuid.uuid4()),
    }


def gitlab(body: bytes, delivery: str | None = None, secret: str = SECRET) -> dict[str, str]:
    return {
        "X-Gitlab-Token": secret,
        "X-Gitlab-Event": "Push Hook",
        "Idempotency-Key": delivery or str(uuid.uuid4()),
    }


@pytest.mark.parametrize("sign", [github, gitea, gitlab])
def test_a_replayed_delivery_is_a_no_op(hooks: Hooks, sign: Any) -> None:
    hooks.registry.create({"name": "sales", "git_url": URL})
    body = _body(after="1" * 40)
    headers = sign(body, "delivery-1")
    first = hooks.post(body, headers)
    assert first.status_code == 200 and first.json()["locations"] == ["sales-A"], first.text
    assert first.json()["replay"] is False
    again = hooks.post(body, headers)
    assert again.status_code == 200, again.text
    assert again.json()["replay"] is True and again.json()["accepted"] is False
    assert again.json()["locations"] == []
    assert "replay" in again.json()["reason"] and "delivery-1" in again.json()["reason"]
    # The delivery id is not signed: a new id on the same signed body is still a replay.
    renamed = hooks.post(body, sign(body, "delivery-2"))
    assert renamed.status_code == 200 and renamed.json()["replay"] is True
    assert len(hooks.controller.pushes) == 1
    # A new push (another body, another id) syncs again.
    fresh_body = _body(after="2" * 40)
    fresh = hooks.post(fresh_body, sign(fresh_body))
    assert fresh.json()["replay"] is False and fresh.json()["locations"] == ["sales-A"]
    assert len(hooks.controller.pushes) == 2


def test_delivery_ids_are_kept_per_provider(hooks: Hooks) -> None:
    hooks.registry.create({"name": "sales", "git_url": URL})
    one, two = _body(after="3" * 40), _body(after="4" * 40)
    assert hooks.post(one, github(one, "same-id")).json()["replay"] is False
    # GitLab's key space is its own: the same id from another provider is no replay.
    assert hooks.post(two, gitlab(two, "same-id")).json()["replay"] is False
    assert len(hooks.controller.pushes) == 2


def test_a_bad_delivery_is_not_remembered(hooks: Hooks) -> None:
    hooks.registry.create({"name": "sales", "git_url": URL})
    body = _body(after="5" * 40)
    assert hooks.post(body, github(body, "d-5", secret="wrong")).status_code == 401
    good = hooks.post(body, github(body, "d-5"))
    assert good.status_code == 200 and good.json()["replay"] is False


def test_a_delivery_the_runtime_refused_can_be_retried(hooks: Hooks) -> None:
    hooks.registry.create({"name": "sales", "git_url": URL})
    body = _body(after="a" * 40)
    headers = gitlab(body, "retried")  # GitLab retries with the same Idempotency-Key
    hooks.controller.refuse = True
    assert hooks.post(body, headers).status_code == 503
    hooks.controller.refuse = False
    retry = hooks.post(body, headers)
    assert retry.status_code == 200 and retry.json()["replay"] is False, retry.text
    assert retry.json()["locations"] == ["sales-A"]


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        (lambda b: {**github(b), **gitea(b)}, 200),
        (lambda b: {**github(b), **gitea(b, secret="wrong")}, 401),
        (lambda b: {**gitea(b), **github(b, secret="wrong")}, 401),
        (lambda b: {**github(b), **gitlab(b, secret="wrong")}, 401),
        (lambda b: {**gitlab(b), **github(b, secret="wrong")}, 401),
        (lambda b: {**gitlab(b), **gitea(b, secret="wrong")}, 401),
        (lambda b: {**github(b), "X-Hub-Signature": "sha1=" + "0" * 40}, 401),
        (lambda b: {**gitea(b), "X-Gogs-Signature": "0" * 64}, 401),
    ],
)
def test_every_signature_present_must_verify(hooks: Hooks, headers: Any, status: int) -> None:
    hooks.registry.create({"name": "sales", "git_url": URL})
    body = _body(after=uuid.uuid4().hex)
    resp = hooks.post(body, headers(body))
    assert resp.status_code == status, resp.text
    if status == 401:
        assert "signature" in resp.json()["detail"]
        assert hooks.controller.pushes == []


def test_a_real_gitea_delivery_with_all_its_signatures_verifies(hooks: Hooks) -> None:
    # Gitea signs with its own header and GitHub's and Gogs' at once.
    hooks.registry.create({"name": "sales", "git_url": URL})
    body = _body(after="6" * 40)
    sha1 = hmac.new(SECRET.encode(), body, hashlib.sha1).hexdigest()
    headers = {
        **gitea(body),
        **github(body),
        "X-Gogs-Signature": _hex(body),
        "X-Hub-Signature": f"sha1={sha1}",
    }
    resp = hooks.post(body, headers)
    assert resp.status_code == 200 and resp.json()["provider"] == "gitea", resp.text


def test_repos_sharing_a_url_are_named_and_each_location_listed_once(hooks: Hooks) -> None:
    names = [f"team{i:02d}" for i in range(12)]
    for name in names:
        hooks.registry.create({"name": name, "git_url": URL})
    body = _body("B", after="7" * 40)
    resp = hooks.post(body, github(body))
    assert resp.status_code == 200, resp.text
    locations = resp.json()["locations"]
    assert sorted(locations) == sorted(f"{n}-B" for n in names)
    assert len(locations) == len(set(locations))
    assert sorted(resp.json()["repos"]) == names
    assert resp.json()["repo"] is None  # several: `repos` names them


def test_the_response_names_the_repo_whose_location_syncs(hooks: Hooks) -> None:
    # Both repos have the URL (spelled differently); only `beta` follows branch B.
    hooks.registry.create({"name": "alpha", "git_url": URL, "environments": ["A"]})
    hooks.registry.create(
        {"name": "beta", "git_url": "git@git.example.com:acme/shared", "environments": ["B"]}
    )
    body = _body("B", after="8" * 40)
    resp = hooks.post(body, github(body))
    assert resp.status_code == 200, resp.text
    assert resp.json()["locations"] == ["beta-B"]
    assert resp.json()["repo"] == "beta" and resp.json()["repos"] == ["beta"]
    assert len(hooks.controller.pushes) == 1  # one request per URL, not per repo
    other = _body("feature", after="9" * 40)
    ignored = hooks.post(other, github(other))
    assert ignored.status_code == 202
    assert ignored.json()["repos"] == ["alpha", "beta"] and ignored.json()["repo"] is None
