"""A real Dagster webserver (two locations, demo-A and demo-B, from one definitions
file) behind a real front door, with users of every role for the matrix tests.

The fleet has one repo `demo` in environments A and B, so the front door maps
demo-A to (demo, A) and demo-B to (demo, B) exactly as in a running fleet.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from dagfleet.audit.writer import AuditWriter
from dagfleet.frontdoor import serve
from dagfleet.frontdoor.passwords import hash_password
from dagfleet.frontdoor.users import UsersFile
from dagfleet.uvthread import ThreadedServer
from tests.support.fleetproc import free_port, wait_for

PASSWORD = "correct-horse-battery"
DEFINITIONS = """
import dagster as dg

@dg.asset
def numbers() -> int:
    return 1

numbers_job = dg.define_asset_job("numbers_job", selection=[numbers])

@dg.schedule(job=numbers_job, cron_schedule="0 0 * * *")
def nightly():
    return dg.RunRequest()

@dg.sensor(job=numbers_job)
def watcher():
    return dg.SkipReason("nothing to do")

defs = dg.Definitions(assets=[numbers], jobs=[numbers_job], schedules=[nightly], sensors=[watcher])
"""
# Who holds what: one user per role fleet-wide, and the scoped ones the issue names.
ROLES_YAML = """
auth:
  roles:
    - {role: admin, users: [ada]}
    - {role: editor, users: [ed]}
    - {role: launcher, users: [lou]}
    - {role: viewer, users: [val], groups: [readers]}
    - {role: launcher, users: [lee], environments: [A]}
    - {role: viewer, users: [lee], environments: [B]}
    - {role: editor, users: [bea], environments: [B]}
    - {role: launcher, users: [pat], locations: ["demo-A"]}
"""
USERS = ("ada", "ed", "lou", "val", "lee", "bea", "pat", "nora")  # nora holds no role


@dataclass
class Webserver:
    url: str
    proc: subprocess.Popen[bytes]
    home: Path


@contextmanager
def dagster_webserver(tmp: Path, sources: Mapping[str, str] | None = None) -> Iterator[Webserver]:
    """A real dagster-webserver on a free port serving one location per entry of
    `sources` (location name -> definitions module text); by default demo-A and demo-B
    from DEFINITIONS. Stopped when the block ends."""
    tmp.mkdir(parents=True, exist_ok=True)
    sources = sources or {"demo-A": DEFINITIONS, "demo-B": DEFINITIONS}
    entries = []
    for i, (name, text) in enumerate(sources.items()):
        (tmp / f"defs_{i}.py").write_text(text)
        entries.append(f"  - python_file: {{relative_path: defs_{i}.py, location_name: {name}}}\n")
    (tmp / "workspace.yaml").write_text("load_from:\n" + "".join(entries))
    home = tmp / "home"
    home.mkdir(exist_ok=True)
    (home / "dagster.yaml").write_text("telemetry: {enabled: false}\n")
    port = free_port()
    log = (tmp / "webserver.log").open("wb")
    args = ["-h", "127.0.0.1", "-p", str(port), "-w", str(tmp / "workspace.yaml")]
    proc = subprocess.Popen(
        [sys.executable, "-m", "dagster_webserver", *args],
        env={**os.environ, "DAGSTER_HOME": str(home)},
        cwd=tmp,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:

        def loaded() -> bool:
            assert proc.poll() is None, (tmp / "webserver.log").read_text()[-2000:]
            try:
                r = httpx.post(
                    f"{url}/graphql",
                    json={
                        "query": "{ workspaceOrError { ... on Workspace { locationEntries "
                        "{ name loadStatus } } } }"
                    },
                    timeout=5,
                )
            except httpx.HTTPError:
                return False
            entries = r.json()["data"]["workspaceOrError"]["locationEntries"]
            return [e["loadStatus"] for e in entries] == ["LOADED"] * len(sources)

        wait_for(loaded, 180, f"the webserver loading {', '.join(sources)}")
        yield Webserver(url, proc, home)
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def fleet_dir(tmp: Path, auth_yaml: str = ROLES_YAML, users: tuple[str, ...] = USERS) -> Path:
    fleet = tmp / "fleet"
    (fleet / "repos").mkdir(parents=True, exist_ok=True)
    (fleet / "fleet.yaml").write_text(
        "name: doortest\nenvironments: [{name: A}, {name: B}]\n" + auth_yaml
    )
    (fleet / "repos" / "demo.yaml").write_text(
        "name: demo\ngit_url: file:///srv/git/demo.git\nmodule_name: demo.definitions\n"
    )
    if users:
        hashed = hash_password(PASSWORD)  # one hash for all: scrypt is slow on purpose
        UsersFile(fleet / ".dagfleet" / "users").write({name: hashed for name in users})
    return fleet


@dataclass
class Door:
    url: str
    host: str
    server: ThreadedServer
    fleet: Path
    upstream: str

    def client(self, **kw: object) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30, **kw)  # type: ignore[arg-type]

    def sign_in(self, name: str, password: str = PASSWORD) -> httpx.Client:
        """A client holding `name`'s session cookie (the browser's way in)."""
        client = self.client(headers={"origin": self.url})
        response = self.login(client, name, password)
        assert response.status_code == 303, response.text
        return client

    def login(self, client: httpx.Client, name: str, password: str) -> httpx.Response:
        page = client.get("/auth/login")
        csrf = re.search(r'name=csrf value="([^"]+)"', page.text)
        assert csrf, page.text
        return client.post(
            "/auth/login",
            data={"username": name, "password": password, "csrf": csrf.group(1), "next": "/"},
            headers={"origin": self.url},
        )


@contextmanager
def front_door(
    fleet: Path,
    upstream: str,
    environ: Mapping[str, str] | None = None,
    host: str = "127.0.0.1",
    port: int | None = None,
    audit: AuditWriter | None = None,
) -> Iterator[Door]:
    port = port or free_port()
    settings = serve.DoorSettings(fleet, fleet / ".dagfleet", host, port, upstream)
    env = {"DAGFLEET_SESSION_KEY": "k" * 48, **(environ or {})}
    door = serve.build(settings, serve.FleetFiles(fleet), env, audit=audit)
    server = serve.start(door, host, port)
    try:
        yield Door(server.url, f"{host}:{port}", server, fleet, upstream)
    finally:
        server.stop()


# GraphQL bodies the Dagster UI sends, for the front door's tests.
def launch(location: str) -> dict[str, Any]:
    return {
        "operationName": "LaunchPipelineExecution",
        "query": "mutation LaunchPipelineExecution($p: ExecutionParams!) { "
        "launchPipelineExecution(executionParams: $p) { __typename "
        "... on LaunchRunSuccess { run { runId } } } }",
        "variables": {
            "p": {
                "selector": {
                    "repositoryLocationName": location,
                    "repositoryName": "__repository__",
                    "pipelineName": "numbers_job",
                },
                "runConfigData": {},
            }
        },
    }


def terminate(run_id: str) -> dict[str, Any]:
    return {
        "query": "mutation Terminate($id: String!) { terminateRun(runId: $id) { __typename } }",
        "variables": {"id": run_id},
    }
