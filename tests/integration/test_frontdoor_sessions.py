"""The front door's sign-in, sessions, CSRF, rate limit and tokens, over real HTTP
in front of a real Dagster webserver."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from dagfleet.frontdoor import serve
from dagfleet.frontdoor.users import UsersFile
from tests.support.frontdoor import (
    PASSWORD,
    Door,
    Webserver,
    dagster_webserver,
    fleet_dir,
    front_door,
)

QUERY = {"query": "{ workspaceOrError { __typename } }"}


@pytest.fixture(scope="module")
def webserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Webserver]:
    with dagster_webserver(tmp_path_factory.mktemp("dagster")) as web:
        yield web


@pytest.fixture
def door(tmp_path: Path, webserver: Webserver) -> Iterator[Door]:
    env = {"DAGFLEET_API_TOKENS": "tok-admin:admin,tok-view:read,tok-launch:launcher"}
    with front_door(fleet_dir(tmp_path), webserver.url, env) as d:
        yield d


def test_no_identity_on_loopback_is_the_local_admin(tmp_path: Path, webserver: Webserver) -> None:
    with (
        front_door(fleet_dir(tmp_path, auth_yaml="", users=()), webserver.url) as d,
        d.client() as c,
    ):
        assert (
            c.post("/graphql", json=QUERY).json()["data"]["workspaceOrError"]["__typename"]
            == "Workspace"
        )
        who = c.get("/auth/whoami").json()
        assert who["name"] == "local" and who["grants"] == ["admin fleet-wide"]


def test_no_identity_on_a_public_address_is_refused(tmp_path: Path, webserver: Webserver) -> None:
    fleet = fleet_dir(tmp_path, auth_yaml="", users=())
    settings = serve.DoorSettings(fleet, fleet / ".dagfleet", "0.0.0.0", 0, webserver.url)
    with pytest.raises(serve.FrontDoorRefused, match="dagfleet user add NAME") as err:
        serve.build(settings, serve.FleetFiles(fleet), {"DAGFLEET_SESSION_KEY": "k" * 48})
    assert "0.0.0.0" in str(err.value) and "bind to 127.0.0.1" in str(err.value)


def test_strangers_are_sent_to_sign_in(door: Door) -> None:
    with door.client() as c:
        api = c.post("/graphql", json=QUERY)
        assert api.status_code == 401 and api.headers["www-authenticate"] == "Bearer"
        page = c.get("/runs?x=1", headers={"accept": "text/html"})
        assert page.status_code == 303
        assert page.headers["location"] == "/auth/login?next=%2Fruns%3Fx%3D1"
        assert c.get("/auth/healthz").json() == {"status": "ok"}
        form = c.get("/auth/login")
        assert "name=username" in form.text and "Sign in to doortest" in form.text


def test_sign_in_session_and_sign_out(door: Door) -> None:
    c = door.client(headers={"origin": door.url})
    signed = door.login(c, "val", PASSWORD)
    assert signed.status_code == 303 and signed.headers["location"] == "/"
    cookie = next(
        h for h in signed.headers.get_list("set-cookie") if h.startswith("dagfleet_session=")
    )
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Max-Age=43200" in cookie
    assert c.get("/auth/whoami").json()["grants"] == ["viewer fleet-wide"]
    assert c.post("/graphql", json=QUERY).status_code == 200
    stolen = dict(c.cookies)
    page = c.get("/auth/logout")
    csrf = page.text.split('name=csrf value="')[1].split('"')[0]
    out = c.post("/auth/logout", data={"csrf": csrf})
    assert out.status_code == 303 and out.headers["location"] == "/auth/login"
    # The old cookie value no longer opens anything, even if it was copied.
    with door.client(cookies=stolen) as again:
        assert again.post("/graphql", json=QUERY, headers={"origin": door.url}).status_code == 401


def test_wrong_password_and_unknown_user_look_the_same(door: Door) -> None:
    with door.client() as c:
        wrong = door.login(c, "val", "nope-nope-nope")
        unknown = door.login(c, "mallory", "nope-nope-nope")
    assert wrong.status_code == unknown.status_code == 401
    assert (
        "Unknown user or wrong password." in wrong.text
        and "Unknown user or wrong password." in unknown.text
    )


def test_sign_in_is_rate_limited(door: Door) -> None:
    with door.client() as c:
        codes = [door.login(c, "ed", f"wrong-{i}-password").status_code for i in range(6)]
        assert codes == [401] * 5 + [429]
        # The right password does not help while the limit holds.
        blocked = door.login(c, "ed", PASSWORD)
        assert blocked.status_code == 429 and int(blocked.headers["retry-after"]) > 0


def test_a_user_without_a_role_cannot_sign_in(door: Door) -> None:
    with door.client() as c:
        refused = door.login(c, "nora", PASSWORD)
    assert refused.status_code == 403 and "holds no role" in refused.text
    assert "dagfleet_session" not in refused.headers.get("set-cookie", "")


def test_cross_site_requests_are_refused(door: Door) -> None:
    c = door.sign_in("ada")
    evil = c.post(
        "/graphql",
        json={"query": "mutation { reloadWorkspace { __typename } }"},
        headers={"origin": "http://evil.example"},
    )
    assert evil.status_code == 403 and "cross-site" in evil.text
    no_origin = httpx.post(
        f"{door.url}/graphql",
        json=QUERY,
        cookies=dict(c.cookies),
        headers={"sec-fetch-site": "cross-site"},
    )
    assert no_origin.status_code == 403
    # A login form posted from elsewhere, or without the form's token, is refused.
    with door.client() as other:
        forged = other.post(
            "/auth/login",
            data={"username": "ada", "password": PASSWORD, "csrf": "x", "next": "/"},
            headers={"origin": door.url},
        )
        assert forged.status_code == 400 and "expired" in forged.text


def test_next_never_leaves_the_site(door: Door) -> None:
    with door.client(headers={"origin": door.url}) as c:
        page = c.get("/auth/login", params={"next": "//evil.example/x"})
        assert 'name=next value="/"' in page.text


def test_removed_user_loses_the_session(door: Door) -> None:
    c = door.sign_in("lou")
    assert c.post("/graphql", json=QUERY).status_code == 200
    users = UsersFile(door.fleet / ".dagfleet" / "users")
    current = users.read()
    del current["lou"]
    users.write(current)
    import time

    time.sleep(1.1)  # the users file is re-read at most once a second
    assert c.post("/graphql", json=QUERY).status_code == 401


def test_bearer_tokens_carry_their_roles(door: Door) -> None:
    with door.client() as c:
        for token, expected in (("tok-admin", 200), ("tok-view", 200), ("bad", 401)):
            r = c.post("/graphql", json=QUERY, headers={"authorization": f"Bearer {token}"})
            assert r.status_code == expected, (token, r.text)
        who = c.get("/auth/whoami", headers={"authorization": "Bearer tok-view"}).json()
        assert who["via"] == "token" and who["grants"] == ["viewer fleet-wide"]
        assert who["name"].startswith("token:") and "tok-view" not in who["name"]
