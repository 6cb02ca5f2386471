"""Every command's exit code, as docs/cli.md documents them (issue 12, item 4).

0 ok; 1 the operation failed or was refused; 2 bad input or the wrong fleet;
3 no running fleet when the command needs one. Each row runs the installed
`dagfleet` in a subprocess against a fresh fleet (no fleet runs: the API URL
points at a port nobody listens on), or against a real API serving it (the real
app over a Reconciler whose loops are never started). A failed sync exiting 1
needs a real runtime: tests/e2e/test_sync_failure_exits_1.py.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from dagfleet.api import ApiServer, ApiSettings, create_app
from tests.support.fleetproc import DAGFLEET, free_port, write_fleet
from tests.support.gitrepo import CodeRepo
from tests.support.runtime import idle_runtime

pytestmark = pytest.mark.integration

TOKEN = "exit-codes-admin"

# (id, arguments, exit code); {fleet} is the fleet directory, run from its parent.
OFFLINE: list[tuple[str, list[str], int]] = [
    ("version", ["version"], 0),
    ("--version", ["--version"], 0),
    ("-V", ["-V"], 0),
    ("init", ["init", "{tmp}/new"], 0),
    ("init-existing", ["init", "{fleet}"], 2),
    ("status", ["status"], 0),
    ("status-json", ["status", "-o", "json"], 0),
    ("status-bad-format", ["status", "-o", "xml"], 2),
    ("status-no-fleet", ["status", "--fleet", "{tmp}/nowhere"], 2),
    ("repo-list", ["repo", "list"], 0),
    ("repo-list-yaml", ["repo", "list", "-o", "yaml"], 0),
    ("repo-show", ["repo", "show", "demo"], 0),
    ("repo-show-unknown", ["repo", "show", "nope"], 1),
    ("repo-add", ["repo", "add", "sales", "--git-url", "/srv/s.git", "--no-discover"], 0),
    ("repo-add-twice", ["repo", "add", "demo", "--git-url", "/srv/s.git", "--no-discover"], 1),
    ("repo-add-bad-var", ["repo", "add", "sales", "--git-url", "/s.git", "--var", "X"], 2),
    ("repo-add-bad-env", ["repo", "add", "sales", "--git-url", "/s.git", "--env", "C"], 2),
    ("repo-add-bad-name", ["repo", "add", "Sales!", "--git-url", "/s.git", "--no-discover"], 2),
    ("repo-sync-not-running", ["repo", "sync", "demo"], 3),
    ("repo-sync-unknown", ["repo", "sync", "nope"], 1),
    ("repo-update-not-running", ["repo", "update", "demo"], 3),
    ("sync-not-running", ["sync"], 3),
    ("repo-suspend", ["repo", "suspend", "demo"], 0),
    ("repo-resume", ["repo", "resume", "demo"], 0),
    ("repo-suspend-unknown", ["repo", "suspend", "nope"], 1),
    ("repo-remove", ["repo", "remove", "demo"], 0),
    ("repo-remove-unknown", ["repo", "remove", "nope"], 1),
    ("repo-logs", ["repo", "logs", "demo"], 0),
    ("repo-logs-unknown-env", ["repo", "logs", "demo", "--env", "C"], 1),
    ("repo-logs-bad-tail", ["repo", "logs", "demo", "--tail", "-1"], 2),
    ("promote-not-running", ["promote", "demo", "--from", "A", "--to", "B"], 3),
    ("promote-bad-env", ["promote", "demo", "--from", "a b", "--to", "B"], 2),
    ("validate-unknown-repo", ["validate", "nope"], 2),
    ("validate-unknown-env", ["validate", "--env", "C"], 2),
    ("validate-unreachable-remote", ["validate", "gone"], 1),
    ("playground-list", ["playground", "list", "--env", "A"], 0),
    ("playground-list-no-playground", ["playground", "list", "--env", "B"], 1),
    ("playground-push", ["playground", "push", "{tmp}/my_assets.py", "--env", "A"], 0),
    ("playground-push-bad-name", ["playground", "push", "{tmp}/notes.txt", "--env", "A"], 2),
    ("playground-rm-missing", ["playground", "rm", "missing.py", "--env", "A"], 1),
    ("debug", ["debug", "demo-A"], 0),
    ("debug-unknown", ["debug", "nope-A"], 2),
    ("unknown-command", ["frobnicate"], 2),
]


@pytest.fixture
def fleet(tmp_path: Path, code_repo: CodeRepo) -> Path:
    repos = {
        "demo": {"git_url": code_repo.url, "module_name": "demo.definitions"},
        "gone": {"git_url": (tmp_path / "gone.git").as_uri(), "module_name": "x"},
    }
    envs = [
        {"name": "A", "branch": "A", "playground": True, "debug": True},
        {"name": "B", "branch": "B"},
    ]
    root = write_fleet(tmp_path / "fleet", repos, environments=envs)
    (tmp_path / "my_assets.py").write_text("X = 1\n")
    (tmp_path / "notes.txt").write_text("not python\n")
    return root


def run(args: list[str], cwd: Path, api: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DAGFLEET_")}
    env.update(DAGFLEET_API_URL=api, DAGFLEET_API_TOKEN=TOKEN, COLUMNS="120")
    return subprocess.run(
        [DAGFLEET, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def fill(args: list[str], fleet: Path) -> list[str]:
    return [a.format(fleet=fleet, tmp=fleet.parent) for a in args]


@pytest.mark.parametrize(("args", "code"), [pytest.param(a, c, id=i) for i, a, c in OFFLINE])
def test_offline_exit_code(fleet: Path, args: list[str], code: int) -> None:
    result = run(fill(args, fleet), fleet, f"http://127.0.0.1:{free_port()}")
    assert result.returncode == code, (result.stdout, result.stderr)
    if code != 0:  # a failure always says why, on stderr
        assert result.stderr.strip(), result.stdout


@pytest.fixture
def api(fleet: Path) -> Iterator[str]:
    settings = ApiSettings(fleet_dir=fleet, tokens={TOKEN: "admin", "reader": "read"})
    server = ApiServer(create_app(settings, idle_runtime(fleet)), "127.0.0.1", free_port())
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


ONLINE: list[tuple[str, list[str], int]] = [
    ("status", ["status"], 0),
    ("repo-list", ["repo", "list", "-o", "wide"], 0),
    ("repo-list-bad-token", ["repo", "list", "--token", "wrong"], 1),
    ("repo-add", ["repo", "add", "sales", "--git-url", "/srv/s.git", "--no-wait"], 0),
    ("repo-add-invalid", ["repo", "add", "sales", "--git-url", "/s.git", "--env", "C"], 2),
    ("repo-add-read-token", ["repo", "add", "s", "--git-url", "/s", "--token", "reader"], 1),
    ("repo-sync-unknown", ["repo", "sync", "nope"], 1),
    ("repo-sync-unknown-env", ["repo", "sync", "demo", "--env", "C"], 1),
    ("repo-suspend", ["repo", "suspend", "demo"], 0),
    ("repo-remove-unknown", ["repo", "remove", "nope"], 1),
    ("repo-logs", ["repo", "logs", "demo", "--env", "A"], 0),
    ("promote-nothing-live", ["promote", "demo", "--from", "A", "--to", "B"], 1),
    ("playground-push", ["playground", "push", "{tmp}/my_assets.py", "--env", "A"], 0),
    ("playground-list-unknown-env", ["playground", "list", "--env", "C"], 1),
]


@pytest.mark.parametrize(("args", "code"), [pytest.param(a, c, id=i) for i, a, c in ONLINE])
def test_online_exit_code(fleet: Path, api: str, args: list[str], code: int) -> None:
    result = run(fill(args, fleet), fleet.parent, api)
    assert result.returncode == code, (result.stdout, result.stderr)
    if code != 0:
        assert result.stderr.strip(), result.stdout
