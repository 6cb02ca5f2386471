"""Scenario: once the fleet has a user, everyone signs in. The UI sends strangers to the
sign-in page, the API wants a token or the front door's session, the CLI on the fleet's
machine keeps working (its local token), and one session serves the UI and the API."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import httpx

from tests.e2e.conftest import demo_fleet
from tests.support.fleetproc import DAGFLEET
from tests.support.gitrepo import CodeRepo

PASSWORD = "e2e-password-1"
TOKEN = "e2e-admin-token"


def add_user(fleet_dir: Path, name: str) -> None:
    added = subprocess.run(
        [DAGFLEET, "user", "add", name, "--password-stdin", "--fleet", str(fleet_dir)],
        input=PASSWORD + "\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert added.returncode == 0, added.stderr


def sign_in(web: str, name: str) -> httpx.Client:
    client = httpx.Client(base_url=web, headers={"origin": web}, timeout=30)
    csrf = re.search(r'name=csrf value="([^"]+)"', client.get("/auth/login").text)
    assert csrf
    signed = client.post(
        "/auth/login",
        data={"username": name, "password": PASSWORD, "csrf": csrf.group(1), "next": "/"},
    )
    assert signed.status_code == 303, signed.text
    return client


def test_everyone_signs_in_once_a_user_exists(
    tmp_path: Path, code_repo: CodeRepo, start_fleet
) -> None:
    fleet_dir = demo_fleet(tmp_path, code_repo)
    with (fleet_dir / "fleet.yaml").open("a") as f:
        f.write(
            "auth:\n  roles:\n    - {role: admin, users: [ada]}\n"
            "    - {role: viewer, users: [val]}\n"
        )
    add_user(fleet_dir, "ada")
    add_user(fleet_dir, "val")
    fleet = start_fleet(fleet_dir, env={"DAGFLEET_API_TOKENS": f"{TOKEN}:admin"})
    fleet.gql.client.headers["authorization"] = f"Bearer {TOKEN}"
    fleet.wait_loaded({"demo-A", "demo-B"})
    web = f"http://127.0.0.1:{fleet.web_port}"
    assert "sign in with a user from" in fleet.log()

    # Strangers: the UI sends them to sign in; GraphQL and the API say 401.
    page = httpx.get(f"{web}/runs", headers={"accept": "text/html"})
    assert page.status_code == 303 and page.headers["location"].startswith("/auth/login")
    assert httpx.post(f"{web}/graphql", json={"query": "{ version }"}).status_code == 401
    assert httpx.get(f"{fleet.api}/locations").status_code == 401

    # The CLI on this machine: no token given, the fleet's own is used.
    status = subprocess.run(
        [DAGFLEET, "status", "--fleet", str(fleet_dir), "-o", "json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert status.returncode == 0, status.stderr
    assert {"demo-A", "demo-B"} <= set(re.findall(r'"(demo-[AB])"', status.stdout))

    # One session, both doors: the API accepts the front door's cookie, with the same roles.
    val = sign_in(web, "val")
    api_origin = fleet.api.removesuffix("/api/v1")
    who = httpx.get(f"{fleet.api}/whoami", cookies=dict(val.cookies)).json()
    assert who["name"] == "val" and who["role"] == "viewer"
    sync = httpx.post(
        f"{fleet.api}/repos/demo/sync",
        cookies=dict(val.cookies),
        headers={"origin": api_origin},
    )
    assert sync.status_code == 403 and "val may not edit" in sync.text
    assert (
        val.post(
            "/graphql", json={"query": "mutation { reloadWorkspace { __typename } }"}
        ).status_code
        == 403
    )
    ada = sign_in(web, "ada")
    reload = ada.post("/graphql", json={"query": "mutation { reloadWorkspace { __typename } }"})
    assert reload.status_code == 200 and "errors" not in reload.json(), reload.text
