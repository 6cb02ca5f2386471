"""Single sign-on through the front door against a real OIDC provider (oidc-provider
on Node): the authorization code flow with PKCE, group claims mapped to scoped roles."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.fleetproc import free_port
from tests.support.frontdoor import Door, Webserver, dagster_webserver, fleet_dir, front_door
from tests.support.oidc_provider import (
    CONFIDENTIAL_ID,
    USERS,
    decline,
    login,
    running_provider,
    standard_clients,
)

SECRET = "dagfleet-test-client-secret-0c9b-5e1f"


@pytest.fixture(scope="module")
def webserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Webserver]:
    with dagster_webserver(tmp_path_factory.mktemp("dagster")) as web:
        yield web


@pytest.fixture
def door(tmp_path: Path, webserver: Webserver) -> Iterator[Door]:
    port = free_port()
    callback = f"http://127.0.0.1:{port}/auth/oidc/callback"
    with running_provider(tmp_path / "idp", standard_clients(callback, SECRET)) as idp:
        auth = f"""
auth:
  oidc:
    issuer: {idp.issuer}
    client_id: {CONFIDENTIAL_ID}
    client_secret: {{from_env: DAGFLEET_TEST_OIDC_SECRET}}
    scopes: [openid, profile, email, groups]
  roles:
    - {{role: admin, groups: [platform]}}
    - {{role: launcher, groups: [analytics], environments: [A]}}
    - {{role: viewer, groups: [analytics], environments: [B]}}
"""
        fleet = fleet_dir(tmp_path, auth_yaml=auth, users=())
        env = {"DAGFLEET_TEST_OIDC_SECRET": SECRET}
        with front_door(fleet, webserver.url, env, port=port) as d:
            yield d


def sso(door: Door, user: str, next_path: str = "/runs") -> tuple[httpx.Client, httpx.Response]:
    client = door.client()
    start = client.get("/auth/oidc/login", params={"next": next_path})
    assert start.status_code == 303, start.text
    back = login(httpx.Client(), start.headers["location"], user, USERS[user]["password"])
    return client, client.get(back)


def test_single_sign_on_maps_groups_to_scoped_roles(door: Door) -> None:
    client, landed = sso(door, "ana")
    assert landed.status_code == 303 and landed.headers["location"] == "/runs"
    who = client.get("/auth/whoami").json()
    assert who["name"] == "ana" and who["via"] == "oidc" and who["groups"] == ["analytics"]
    assert who["grants"] == ["launcher in environments A", "viewer in environments B"]
    query = {"query": "{ workspaceOrError { __typename } }"}
    assert client.post("/graphql", json=query, headers={"origin": door.url}).status_code == 200
    admin, _ = sso(door, "alice")
    assert admin.get("/auth/whoami").json()["grants"] == ["admin fleet-wide"]


def test_the_login_page_offers_single_sign_on(door: Door) -> None:
    with door.client() as c:
        page = c.get("/auth/login", params={"next": "/assets"})
    assert 'href="/auth/oidc/login?next=/assets"' in page.text
    assert "name=password" not in page.text  # no local users: no password form


def test_a_declined_or_replayed_sign_in_is_refused(door: Door) -> None:
    client = door.client()
    start = client.get("/auth/oidc/login")
    back = decline(httpx.Client(), start.headers["location"])
    refused = client.get(back)
    assert refused.status_code == 400 and "access_denied" in refused.text
    assert client.get("/auth/whoami").status_code == 401
    # The pending sign-in was used up: the same callback again cannot resume it.
    again = client.get(back)
    assert again.status_code == 400 and "cannot be resumed" in again.text
    # A callback without the browser's pending-login cookie is refused too.
    with door.client() as stranger:
        assert stranger.get("/auth/oidc/callback?code=x&state=y").status_code == 400
