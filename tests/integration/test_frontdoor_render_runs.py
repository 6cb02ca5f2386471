"""The front door each render describes actually runs: its rendered command, fleet
files, environment and secret references, laid out as the platform would (volumes,
compose configs and secrets, the ECS start script), start the real `dagfleet
frontdoor serve` in front of a real Dagster webserver. Strangers are refused, a user
from the referenced users file signs in, and the UI's GraphQL answers through it.

Only what the platform supplies is substituted: the secret values behind the
references, local paths for the container's mount points, a free port, and the test
webserver's address for the in-cluster one.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from dagfleet.frontdoor.passwords import hash_password
from dagfleet.render import ComposeOptions, EcsOptions, K8sOptions, render_compose, render_ecs
from dagfleet.render import frontdoor as fd
from dagfleet.render import k8s_frontdoor as kf
from dagfleet.render.compose import SESSION_SECRET, USERS_SECRET
from dagfleet.render.ecs_frontdoor import WORK_DIR, webserver_upstream
from dagfleet.render.k8s import render_k8s
from dagfleet.render.write import texts
from dagfleet.spec.models import Fleet
from tests.support.fleetproc import free_port, wait_for
from tests.support.frontdoor import PASSWORD, Webserver, dagster_webserver
from tests.unit.render.fleets import make_fleet

pytestmark = pytest.mark.integration

SESSION_KEY = "k" * 48
QUERY = {"query": "{ workspaceOrError { __typename } }"}
BIN = Path(sys.executable).parent


def doortest_fleet() -> Fleet:
    """One repo in A and B, as the test webserver serves it (demo-A, demo-B)."""
    fleet_doc = {
        "name": "doortest",
        "environments": [{"name": "A"}, {"name": "B"}],
        "auth": {"roles": [{"role": "viewer", "users": ["val"]}]},
    }
    repo = {
        "name": "demo",
        "git_url": "https://git.example.com/data/demo.git",
        "module_name": "demo.defs",
    }
    return make_fleet(fleet_doc, [repo])


@pytest.fixture(scope="module")
def webserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Webserver]:
    with dagster_webserver(tmp_path_factory.mktemp("dagster")) as web:
        yield web


@contextmanager
def running(argv: list[str], env: Mapping[str, str], port: int, log: Path) -> Iterator[str]:
    """The process, until its /auth/healthz answers; stopped (and waited for) after."""
    out = log.open("wb")
    proc = subprocess.Popen(
        argv,
        env={"PATH": f"{BIN}:{os.environ['PATH']}", **env},
        stdout=out,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:

        def healthy() -> bool:
            assert proc.poll() is None, log.read_text()[-3000:]
            try:
                return httpx.get(f"{url}{fd.HEALTH_PATH}", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(healthy, 60, "the rendered front door answering /auth/healthz")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        out.close()


def check_the_door(url: str, token: str | None = None) -> None:
    with httpx.Client(base_url=url, timeout=30) as stranger:
        assert stranger.get(fd.HEALTH_PATH).json() == {"status": "ok"}
        assert stranger.post("/graphql", json=QUERY).status_code == 401
    with httpx.Client(base_url=url, timeout=30, headers={"origin": url}) as user:
        page = user.get("/auth/login")
        csrf = re.search(r'name=csrf value="([^"]+)"', page.text)
        assert csrf, page.text
        form = {"username": "val", "password": PASSWORD, "csrf": csrf.group(1), "next": "/"}
        assert user.post("/auth/login", data=form).status_code == 303
        answer = user.post("/graphql", json=QUERY)
        assert answer.json()["data"]["workspaceOrError"]["__typename"] == "Workspace"
        assert user.get("/auth/whoami").json()["name"] == "val"
    if token is not None:
        bearer = {"authorization": f"Bearer {token}"}
        answer = httpx.post(f"{url}/graphql", json=QUERY, headers=bearer, timeout=30)
        assert answer.json()["data"]["workspaceOrError"]["__typename"] == "Workspace"


def users_text() -> str:
    return f"val {hash_password(PASSWORD)}\n"


def _replace(argv: list[str], old: str, new: str) -> list[str]:
    return [a.replace(old, new) for a in argv]


def _with_port(argv: list[str], port: int) -> list[str]:
    out = list(argv)
    out[out.index("--port") + 1] = str(port)
    return out


# --- Kubernetes ---------------------------------------------------------------------------


def test_the_kubernetes_front_door_runs_from_its_manifests(
    tmp_path: Path, webserver: Webserver
) -> None:
    docs: list[dict[str, Any]] = []
    for text in texts(render_k8s(doortest_fleet(), K8sOptions()))[
        "manifests/instance/frontdoor.yaml"
    ].split("\n---\n"):
        docs.append(yaml.safe_load(text))
    cm = next(d for d in docs if d["kind"] == "ConfigMap")
    pod = next(d for d in docs if d["kind"] == "Deployment")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    # The volumes, as the kubelet lays them out.
    fleet_dir = tmp_path / "fleet"
    volume = next(v for v in pod["volumes"] if v["name"] == "fleet")
    for item in volume["projected"]["sources"][0]["configMap"]["items"]:
        (fleet_dir / item["path"]).parent.mkdir(parents=True, exist_ok=True)
        (fleet_dir / item["path"]).write_text(cm["data"][item["key"]])
    users_dir = tmp_path / "users"
    users_dir.mkdir()
    (users_dir / fd.USERS).write_text(users_text())
    # The Secret the operator created: the session key and tokens.
    secret = {fd.SESSION_KEY: SESSION_KEY, fd.API_TOKENS: "tok-view:viewer"}
    env = {"HOME": str(tmp_path)}
    for entry in container["env"]:
        if "value" in entry:
            env[entry["name"]] = entry["value"] if entry["name"] != "HOME" else str(tmp_path)
            continue
        ref = entry["valueFrom"]["secretKeyRef"]
        assert ref["name"] == fd.SECRET
        if ref["key"] in secret:
            env[entry["name"]] = secret[ref["key"]]
        else:
            assert ref.get("optional"), f"{ref} is required but the test gives no value"
    port = free_port()
    argv = _replace(container["command"], fd.FLEET_DIR, str(fleet_dir))
    argv = _replace(argv, kf.USERS_DIR, str(users_dir))
    argv[argv.index("--upstream") + 1] = webserver.url
    with running(_with_port(argv, port), env, port, tmp_path / "door.log") as url:
        check_the_door(url, token="tok-view")


# --- compose ------------------------------------------------------------------------------

_INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::([-?])([^}]*))?\}")


def interpolate(value: str, shell: Mapping[str, str]) -> str:
    """What `docker compose` does to a value: ${VAR}, ${VAR:-default}, ${VAR:?error}, $$."""

    def one(match: re.Match[str]) -> str:
        name, op, arg = match.groups()
        if shell.get(name):
            return shell[name]
        if op == "?":
            raise AssertionError(f"compose would refuse: {name}: {arg}")
        return arg or ""

    return _INTERPOLATION.sub(one, value).replace("$$", "$")


def test_the_compose_front_door_runs_from_its_service(tmp_path: Path, webserver: Webserver) -> None:
    doc = yaml.safe_load(texts(render_compose(doortest_fleet(), ComposeOptions()))["compose.yaml"])
    service = doc["services"]["frontdoor-a"]
    shell = {"DAGFLEET_SESSION_KEY": SESSION_KEY}  # the operator's shell, nothing else
    fleet_dir = tmp_path / "fleet"
    for config in service["configs"]:
        target = Path(config["target"].replace(fd.FLEET_DIR, str(fleet_dir)))
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(interpolate(doc["configs"][config["source"]]["content"], shell))
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir()
    (tmp_path / "users").write_text(users_text())
    for name in service["secrets"]:
        source = doc["secrets"][name]
        if "environment" in source:
            value = shell[source["environment"]]
        else:
            # `file:` paths are relative to the compose file's directory (here tmp_path).
            value = (tmp_path / interpolate(source["file"], shell)).read_text()
        (secrets_dir / name).write_text(value)
    assert {SESSION_SECRET, USERS_SECRET} <= set(service["secrets"])
    env = {k: interpolate(v, shell) for k, v in service["environment"].items()}
    env = {k: v.replace("/run/secrets", str(secrets_dir)) for k, v in env.items()}
    env["HOME"] = str(tmp_path)
    port = free_port()
    argv = _replace(service["command"], fd.FLEET_DIR, str(fleet_dir))
    argv = _replace(argv, "/run/secrets", str(secrets_dir))
    argv[argv.index("--upstream") + 1] = webserver.url
    with running(_with_port(argv, port), env, port, tmp_path / "door.log") as url:
        check_the_door(url)


# --- ECS ----------------------------------------------------------------------------------


def test_the_ecs_front_door_runs_from_its_task_definition(
    tmp_path: Path, webserver: Webserver
) -> None:
    template = yaml.safe_load(texts(render_ecs(doortest_fleet(), EcsOptions()))["template.yaml"])
    task = template["Resources"]["TaskDefinitionWebserver"]["Properties"]
    container = next(c for c in task["ContainerDefinitions"] if c["Name"] == "frontdoor")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    # What CloudFormation and ECS resolve: parameters and the secrets behind the ARNs.
    parameters = {"FrontDoorPublicUrl": url}
    arns = {
        "FrontDoorSessionKeySecretArn": SESSION_KEY,
        "FrontDoorUsersSecretArn": users_text(),
        "FrontDoorApiTokensSecretArn": "tok-view:viewer",
    }
    env = {"HOME": str(tmp_path)}
    for entry in container["Environment"]:
        value = entry["Value"]
        env[entry["Name"]] = parameters[value["Ref"]] if isinstance(value, dict) else value
    for entry in container["Secrets"]:
        if "Fn::If" in entry:
            entry = entry["Fn::If"][1]  # the ARN parameters are given: the condition holds
        env[entry["Name"]] = arns[entry["ValueFrom"]["Ref"]]
    assert container["EntryPoint"] == ["sh", "-c"]
    work = tmp_path / "work"
    script = container["Command"][0].replace(WORK_DIR, str(work))
    script = script.replace(webserver_upstream(), webserver.url)
    script = script.replace(f"--port {fd.FRONTDOOR_PORT}", f"--port {port}")
    with running(["sh", "-c", script], env, port, tmp_path / "door.log") as served:
        check_the_door(served, token="tok-view")
    # The fleet the script wrote is the rendered fleet's files, byte for byte.
    for path, text in fd.fleet_files(doortest_fleet()).items():
        assert (work / "fleet" / path).read_text() == text
