"""`dagfleet repo` and the repo make targets as a user runs them (issue 4).

Offline: no fleet runs, so the CLI edits the fleet files through the registry
(DAGFLEET_API_URL points at a port nobody listens on, so a fleet some other
process runs on the default 127.0.0.1:3030 is never touched). Online: the real
API app serves a real Reconciler over the same kind of fleet directory, with
loops that are never started (as in test_promote_refusals.py); the CLI is the
installed `dagfleet` console script in a subprocess. Secrets are references:
their values sit in this process's environment and in a file, and must never
appear in anything the CLI prints.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from dagfleet.api import ApiServer, ApiSettings, create_app
from dagfleet.layout import Layout
from dagfleet.registry import etag_of
from dagfleet.spec import load_fleet
from dagfleet.status import LocationStatus, Reason, StatusStore
from tests.support.fleetproc import DAGFLEET, free_port, wait_for, write_fleet
from tests.support.gitrepo import CodeRepo
from tests.support.runtime import idle_runtime

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SECRET_ENV_VALUE = "hunter2-env-secret-never-printed"
SECRET_FILE_VALUE = "file-secret-never-printed"
ADMIN_TOKEN = "cli-repo-admin-token"
DATA = Path(".dagfleet") / "data"  # fleet.yaml's default storage.root


# ---- helpers ---------------------------------------------------------------------------


def base_env(api_url: str, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("COLUMNS", "LINES", "DAGFLEET_API_URL", "DAGFLEET_API_TOKEN")
    }
    # Wide enough that Rich never wraps a table cell; the secret's value is in the
    # environment the CLI runs in, as it would be for a user.
    env.update(COLUMNS="250", DAGFLEET_API_URL=api_url, SALES_DB_PASSWORD=SECRET_ENV_VALUE)
    env.update(extra)
    return env


def cli(
    *args: str, env: dict[str, str], cwd: Path, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [DAGFLEET, "repo", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def flat(text: str) -> str:
    return " ".join(text.split())


def cells(row: str) -> list[str]:
    """A row of a plain (kubectl-style) table: columns are two or more spaces apart."""
    return re.split(r"\s{2,}", row.strip())


def no_secret_values(*results: subprocess.CompletedProcess[str]) -> None:
    for r in results:
        for secret in (SECRET_ENV_VALUE, SECRET_FILE_VALUE):
            assert secret not in r.stdout + r.stderr, (r.args, r.stdout, r.stderr)


def repo_doc(fleet: Path, name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((fleet / "repos" / f"{name}.yaml").read_text())
    return loaded


def write_log(fleet: Path, location: str, lines: list[str]) -> Path:
    path = Layout.for_fleet(fleet).log(location)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{line}\n" for line in lines))
    return path


def write_data(fleet: Path, repo: str, envs: tuple[str, ...] = ("A", "B")) -> list[Path]:
    """A file in the repo's storage prefix (`repos/<name>`) under each environment's root."""
    made = []
    for env in envs:
        d = fleet / DATA / env / "repos" / repo
        d.mkdir(parents=True, exist_ok=True)
        (d / "asset.parquet").write_text("rows")
        made.append(d)
    return made


def ready_status(location: str, commit: str) -> LocationStatus:
    repo, env = location.rsplit("-", 1)
    s = LocationStatus(location=location, repo=repo, env=env, commit=commit)
    s = s.with_condition("Serving", "True", Reason.CODE_SERVER_RUNNING, f"serving {commit}")
    return s.with_condition("Synced", "True", Reason.PUBLISHED, f"serving {commit}")


SALES_ADD = [
    "--branch",
    "A",
    "--python-file",
    "demo/definitions.py",
    "--working-directory",
    ".",
    "--var",
    "MODE=batch",
    "--secret-env",
    "DB_PASSWORD=SALES_DB_PASSWORD",
    "--secret-file",
    "API_KEY=secrets/sales-api-key",
    "--environments",
    "A",
]


def sales_document(url: str) -> dict[str, Any]:
    """What `repo add sales <SALES_ADD>` writes: references, never values."""
    return {
        "name": "sales",
        "git_url": url,
        "branch": "A",
        "environments": ["A"],
        "python_file": "demo/definitions.py",
        "environment": [
            {"name": "MODE", "value": "batch"},
            {"name": "DB_PASSWORD", "from_env": "SALES_DB_PASSWORD"},
            {"name": "API_KEY", "from_file": "secrets/sales-api-key"},
        ],
    }


# ---- fixtures --------------------------------------------------------------------------


@pytest.fixture
def fleet(tmp_path: Path, code_repo: CodeRepo) -> Path:
    fields = {"git_url": code_repo.url, "module_name": "demo.definitions"}
    root = write_fleet(tmp_path / "fleet", {"demo": fields})
    (root / "secrets").mkdir()
    (root / "secrets" / "sales-api-key").write_text(SECRET_FILE_VALUE)
    return root


@pytest.fixture
def sales(tmp_path: Path) -> CodeRepo:
    return CodeRepo(tmp_path / "sales-remote", name="sales")


@pytest.fixture
def offline(tmp_path: Path) -> dict[str, str]:
    """Nothing listens at the API URL: every command falls back to the files."""
    return base_env(f"http://127.0.0.1:{free_port()}")


@pytest.fixture
def api(fleet: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The real API app serving a real Reconciler (loops never started) on a free port."""
    # The server process has the secret too: were the API to resolve references, it would show.
    monkeypatch.setenv("SALES_DB_PASSWORD", SECRET_ENV_VALUE)
    runtime = idle_runtime(fleet)
    settings = ApiSettings(fleet_dir=fleet, tokens={ADMIN_TOKEN: "admin"})
    server = ApiServer(create_app(settings, runtime), "127.0.0.1", free_port())
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def online(api: str) -> dict[str, str]:
    return base_env(api, DAGFLEET_API_TOKEN=ADMIN_TOKEN)


# ---- offline: the files, edited with the API's validation ------------------------------


def test_offline_add_with_every_flag_then_list_and_show(
    fleet: Path, sales: CodeRepo, offline: dict[str, str], tmp_path: Path
) -> None:
    StatusStore(Layout.for_fleet(fleet).status).write(ready_status("demo-A", "a" * 40))

    added = cli(
        "add",
        "sales",
        "--git-url",
        sales.url,
        *SALES_ADD,
        "--fleet",
        str(fleet),
        env=offline,
        cwd=tmp_path,
    )
    assert added.returncode == 0, added.stderr
    assert added.stdout.splitlines() == [
        "added sales: locations sales-A",
        "no fleet is running: the locations start with `dagfleet up`",
    ]
    doc = repo_doc(fleet, "sales")
    assert doc == sales_document(sales.url)
    assert load_fleet(fleet).repos["sales"].environment[1].is_secret  # the loader agrees

    listed = cli("list", "--json", "--fleet", str(fleet), env=offline, cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    repos = {r["name"]: r for r in json.loads(listed.stdout)}
    assert sorted(repos) == ["demo", "sales"]
    s = repos["sales"]
    raw = (fleet / "repos" / "sales.yaml").read_bytes()
    assert (s["etag"], s["suspended"], s["locations"], s["status"]) == (
        etag_of(raw),
        False,
        ["sales-A"],
        [],
    )
    assert s["spec"]["python_file"] == "demo/definitions.py"
    assert (s["spec"]["branch"], s["spec"]["environments"]) == ("A", ["A"])
    assert s["spec"]["environment"] == [
        {"name": "MODE", "value": "batch", "from_env": None, "from_file": None},
        {"name": "DB_PASSWORD", "value": None, "from_env": "SALES_DB_PASSWORD", "from_file": None},
        {"name": "API_KEY", "value": None, "from_env": None, "from_file": "secrets/sales-api-key"},
    ]
    demo = repos["demo"]
    assert demo["locations"] == ["demo-A", "demo-B"]
    assert [(st["location"], st["commit"]) for st in demo["status"]] == [("demo-A", "a" * 40)]

    table = cli("list", "--fleet", str(fleet), env=offline, cwd=tmp_path)
    assert table.returncode == 0, table.stderr
    rows = [line for line in table.stdout.splitlines() if "sales" in line or "demo" in line]
    assert len(rows) == 2
    # No fleet runs: the last status is shown as stopped (offline.OfflineController).
    assert "demo-A: False (FleetStopped)" in rows[0] and "demo-B: not synced" in rows[0]
    assert sales.url in rows[1] and "sales-A: not synced" in rows[1]

    # A hand-edited file with a duplicate key: listed as a problem (file, line, key), exit 2.
    (fleet / "repos" / "broken.yaml").write_text("name: broken\nsuspend: true\nsuspend: false\n")
    partial = cli("list", "--fleet", str(fleet), env=offline, cwd=tmp_path)
    assert partial.returncode == 2, partial.stderr
    assert "sales" in partial.stdout and "repos/broken.yaml" in partial.stderr
    assert "duplicate key 'suspend'" in partial.stderr
    (fleet / "repos" / "broken.yaml").unlink()

    shown = cli("show", "sales", "--fleet", str(fleet), env=offline, cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    yaml_part, _, rest = shown.stdout.partition("etag: ")
    assert yaml.safe_load(yaml_part) == doc
    assert rest.splitlines()[0] == etag_of(raw)
    assert "from_env: SALES_DB_PASSWORD" in shown.stdout
    assert "from_file: secrets/sales-api-key" in shown.stdout
    (row,) = [line for line in shown.stdout.splitlines() if line.startswith("sales-A")]
    assert cells(row) == ["sales-A", "A", "-", "not synced", "-"]
    no_secret_values(added, listed, table, shown)


BAD_ADDS = [
    pytest.param(
        ["--secret-env", "DB_PASSWORD=hunter2!"],
        "--secret-env 'DB_PASSWORD=...': after '=' give the NAME of the variable",
        "hunter2",
        id="secret-env-given-the-secret",
    ),
    pytest.param(
        ["--secret-env", "hunter2-secret"],
        "--secret-env: write KEY=ENV_VAR",
        "hunter2",
        id="secret-env-without-key",
    ),
    pytest.param(
        ["--secret-env", "bad key=VAR"],
        "--secret-env 'bad key=...': 'bad key' is not a valid environment variable name",
        None,
        id="secret-env-bad-key",
    ),
    pytest.param(
        ["--secret-file", "API_KEY=../outside"],
        "--secret-file 'API_KEY=../outside': '../outside' contains '..'",
        None,
        id="secret-file-dotdot",
    ),
    pytest.param(
        ["--secret-file", "API_KEY=-x"],
        "must not start with '-': write ./-x",
        None,
        id="secret-file-dash",
    ),
    pytest.param(
        ["--secret-file", "API_KEY"],
        "--secret-file 'API_KEY': write KEY=PATH",
        None,
        id="secret-file-without-path",
    ),
    pytest.param(
        ["--secret-file", "API_KEY="],
        "--secret-file 'API_KEY=': the path is empty",
        None,
        id="secret-file-empty",
    ),
    pytest.param(
        ["--env", "bad name=1"],
        "--env 'bad name=1': 'bad name' is not a valid environment variable name",
        None,
        id="env-bad-key",
    ),
    pytest.param(["--var", "MODE"], "--var 'MODE': write KEY=VALUE", None, id="var-no-value"),
    pytest.param(
        ["--env", "C"],
        "repos/sales.yaml: environments.C: unknown environment; known environments: A, B",
        None,
        id="env-is-an-environment-name",
    ),
    pytest.param(
        ["--var", "X=1", "--secret-env", "X=Y"],
        "--secret-env 'X=...': X is already set by --var: keep one of them",
        None,
        id="set-twice",
    ),
    pytest.param(
        ["--environments", "A,C"],
        "repos/sales.yaml: environments.C: unknown environment; known environments: A, B",
        None,
        id="unknown-environment",
    ),
    pytest.param(
        ["--module", "m", "--python-file", "f.py"],
        "give at most one of --module, --python-file and --package",
        None,
        id="two-targets",
    ),
]


@pytest.mark.parametrize(("flags", "said", "not_said"), BAD_ADDS)
def test_offline_add_refuses_bad_input_naming_the_flag(
    fleet: Path,
    offline: dict[str, str],
    tmp_path: Path,
    flags: list[str],
    said: str,
    not_said: str | None,
) -> None:
    before = sorted(p.name for p in (fleet / "repos").iterdir())
    url = "/srv/git/sales.git"
    result = cli(
        "add", "sales", "--git-url", url, *flags, "--fleet", str(fleet), env=offline, cwd=tmp_path
    )
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert said in flat(result.stderr), result.stderr
    assert result.stderr.count("error") == 1
    if not_said is not None:
        assert not_said not in result.stdout + result.stderr
    assert sorted(p.name for p in (fleet / "repos").iterdir()) == before


@pytest.mark.slow
def test_offline_logs_check_the_environment_like_the_api(
    fleet: Path, offline: dict[str, str], tmp_path: Path
) -> None:
    write_log(fleet, "demo-A", ["a1", "a2", "a3"])
    write_log(fleet, "demo-B", ["b1"])
    run = lambda *a: cli("logs", *a, "--fleet", str(fleet), env=offline, cwd=tmp_path)  # noqa: E731

    one = run("demo", "--env", "A", "--tail", "2")
    assert (one.returncode, one.stdout) == (0, "a2\na3\n"), one.stderr
    both = run("demo")
    assert both.returncode == 0, both.stderr
    assert both.stdout.splitlines() == ["[demo-A] a1", "[demo-A] a2", "[demo-A] a3", "[demo-B] b1"]

    unknown_env = run("demo", "--env", "C")
    assert unknown_env.returncode == 1
    assert "unknown environment 'C'" in unknown_env.stderr and unknown_env.stdout == ""
    unknown_repo = run("nope", "--env", "A")
    assert unknown_repo.returncode == 1 and "unknown repo 'nope'" in unknown_repo.stderr
    bad_tail = run("demo", "--tail", "-1")
    assert bad_tail.returncode == 2 and "--tail" in bad_tail.stderr


def follow_until(
    args: list[str], env: dict[str, str], cwd: Path, log: Path, first: str, appended: str
) -> tuple[int, str]:
    """Run `repo logs --follow`, see `first`, append a line, see it, then Ctrl-C."""
    proc = subprocess.Popen(
        [DAGFLEET, "repo", "logs", *args, "--follow"],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    seen = bytearray()
    assert proc.stdout is not None and proc.stderr is not None
    out = proc.stdout

    def read() -> None:
        while chunk := out.read1(4096):
            seen.extend(chunk)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        wait_for(lambda: first.encode() in seen, 60, f"{first!r} printed")
        with log.open("a") as f:
            f.write(appended + "\n")
        wait_for(lambda: appended.encode() in seen, 30, f"{appended!r} followed")
        proc.send_signal(signal.SIGINT)
        code = proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    reader.join(10)
    assert proc.stderr.read() == b""
    return code, seen.decode()


def test_offline_logs_follow_prints_new_lines_until_interrupted(
    fleet: Path, offline: dict[str, str], tmp_path: Path
) -> None:
    log = write_log(fleet, "demo-A", ["old line"])
    args = ["demo", "--env", "A", "--fleet", str(fleet)]
    code, seen = follow_until(args, offline, tmp_path, log, "old line", "new line")
    assert code == 0
    assert seen == "old line\nnew line\n"


@pytest.mark.parametrize("verb", ["sync", "update"])  # `update`: the hidden old name
def test_offline_sync_needs_a_running_fleet_after_the_api_checks(
    fleet: Path, offline: dict[str, str], tmp_path: Path, verb: str
) -> None:
    before = (fleet / "repos" / "demo.yaml").read_bytes()
    run = lambda *a: cli(verb, *a, "--fleet", str(fleet), env=offline, cwd=tmp_path)  # noqa: E731

    update = run("demo")
    assert update.returncode == 3, update.stderr
    assert "no running fleet: start it with `dagfleet up`" in update.stderr
    assert update.stdout == ""
    # The same refusals as the API gives before it asks the runtime.
    unknown_repo = run("nope")
    assert unknown_repo.returncode == 1 and "unknown repo 'nope'" in unknown_repo.stderr
    unknown_env = run("demo", "--env", "C")
    assert unknown_env.returncode == 1 and "unknown environment 'C'" in unknown_env.stderr
    assert (fleet / "repos" / "demo.yaml").read_bytes() == before
    assert not (fleet / ".dagfleet" / "checkouts").exists()


@pytest.mark.slow
def test_offline_remove_keeps_data_and_purge_deletes_it(
    fleet: Path, sales: CodeRepo, offline: dict[str, str], tmp_path: Path
) -> None:
    run = lambda *a: cli(*a, "--fleet", str(fleet), env=offline, cwd=tmp_path)  # noqa: E731
    assert run("add", "sales", "--git-url", sales.url).returncode == 0
    demo_data = write_data(fleet, "demo")
    sales_data = write_data(fleet, "sales")

    removed = run("remove", "demo")
    assert removed.returncode == 0, removed.stderr
    assert removed.stdout.strip() == "removed demo"
    assert not (fleet / "repos" / "demo.yaml").exists()
    assert all((d / "asset.parquet").is_file() for d in demo_data)

    purged = run("remove", "sales", "--purge-data")
    assert purged.returncode == 0, purged.stderr
    assert purged.stdout.strip() == "removed sales and its data"
    assert not (fleet / "repos" / "sales.yaml").exists()
    assert not any(d.exists() for d in sales_data)
    assert all((d / "asset.parquet").is_file() for d in demo_data), "only sales' data goes"

    again = run("remove", "sales")
    assert again.returncode == 1 and "unknown repo 'sales'" in again.stderr
    listed = run("list", "--json")
    assert json.loads(listed.stdout) == []


def test_offline_fleet_found_from_the_working_directory(
    tmp_path: Path, sales: CodeRepo, offline: dict[str, str]
) -> None:
    init = subprocess.run([DAGFLEET, "init", "f"], cwd=tmp_path, capture_output=True, text=True)
    assert init.returncode == 0, init.stderr
    fleet = tmp_path / "f"
    added = cli("add", "sales", "--git-url", sales.url, "--package", "demo", env=offline, cwd=fleet)
    assert added.returncode == 0, added.stderr
    assert repo_doc(fleet, "sales") == {
        "name": "sales",
        "git_url": sales.url,
        "package_name": "demo",
    }
    listed = cli("list", "--json", env=offline, cwd=fleet)
    assert [r["name"] for r in json.loads(listed.stdout)] == ["medallion", "sales"]

    nowhere = cli("list", env=offline, cwd=tmp_path)
    assert nowhere.returncode == 2
    assert "no fleet here and no running API" in flat(nowhere.stderr)


# ---- online: the same commands through the real API ------------------------------------


@pytest.mark.slow
def test_online_add_list_show_logs_update_match_the_offline_answers(
    fleet: Path, sales: CodeRepo, api: str, online: dict[str, str], tmp_path: Path
) -> None:
    # No fleet in the working directory and no --fleet: everything goes through the API.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    StatusStore(Layout.for_fleet(fleet).status).write(ready_status("demo-A", "a" * 40))
    write_log(fleet, "demo-A", ["a1", "a2"])
    write_log(fleet, "demo-B", ["b1"])
    offline = base_env(f"http://127.0.0.1:{free_port()}")
    run = lambda *a, env=online: cli(*a, env=env, cwd=elsewhere)  # noqa: E731

    no_token = {k: v for k, v in online.items() if k != "DAGFLEET_API_TOKEN"}
    refused = run("list", env=no_token)
    assert refused.returncode == 1 and "401" in refused.stderr
    with_flag = run("list", "--json", "--token", ADMIN_TOKEN, "--api", api, env=no_token)
    assert with_flag.returncode == 0, with_flag.stderr

    added = run("add", "sales", "--git-url", sales.url, *SALES_ADD, "--no-wait")
    assert added.returncode == 0, added.stderr
    assert added.stdout.strip() == "added sales: locations sales-A"
    assert repo_doc(fleet, "sales") == sales_document(sales.url)

    listed = run("list", "--json")
    assert listed.returncode == 0, listed.stderr
    from_files = cli("list", "--json", "--fleet", str(fleet), env=offline, cwd=elsewhere)
    # The same repos both ways; statuses differ only in that the files say no fleet runs.
    without_status = lambda out: [  # noqa: E731
        {k: v for k, v in r.items() if k != "status"} for r in json.loads(out)
    ]
    assert without_status(listed.stdout) == without_status(from_files.stdout)
    repos = {r["name"]: r for r in json.loads(listed.stdout)}
    assert repos["sales"]["spec"]["environment"][1]["from_env"] == "SALES_DB_PASSWORD"
    assert [st["location"] for st in repos["demo"]["status"]] == ["demo-A"]

    shown = run("show", "sales")
    assert shown.returncode == 0, shown.stderr
    shown_offline = cli("show", "sales", "--fleet", str(fleet), env=offline, cwd=elsewhere)
    assert shown.stdout == shown_offline.stdout
    assert yaml.safe_load(shown.stdout.partition("etag: ")[0]) == sales_document(sales.url)

    logs = run("logs", "demo", "--env", "A", "--tail", "1")
    assert (logs.returncode, logs.stdout) == (0, "a2\n"), logs.stderr
    both = run("logs", "demo")
    assert both.stdout.splitlines() == ["[demo-A] a1", "[demo-A] a2", "[demo-B] b1"]
    for args in (["logs", "demo", "--env", "C"], ["update", "demo", "--env", "C"]):
        on, off = run(*args), cli(*args, "--fleet", str(fleet), env=offline, cwd=elsewhere)
        assert (on.returncode, off.returncode) == (1, 1), (on.stderr, off.stderr)
        assert "404: unknown environment 'C'" in on.stderr
        assert "unknown environment 'C'" in off.stderr
    unknown = run("update", "nope")
    assert unknown.returncode == 1 and "404: unknown repo 'nope'" in unknown.stderr
    no_secret_values(refused, with_flag, added, listed, from_files, shown, logs)


def test_online_logs_follow(fleet: Path, online: dict[str, str], tmp_path: Path) -> None:
    log = write_log(fleet, "demo-B", ["before"])
    code, seen = follow_until(["demo", "--env", "B"], online, tmp_path, log, "before", "after")
    assert code == 0
    assert seen == "before\nafter\n"


@pytest.mark.slow
def test_online_remove_and_purge(
    fleet: Path, sales: CodeRepo, online: dict[str, str], tmp_path: Path
) -> None:
    run = lambda *a: cli(*a, env=online, cwd=tmp_path)  # noqa: E731
    assert run("add", "sales", "--git-url", sales.url, "--no-wait").returncode == 0
    demo_data, sales_data = write_data(fleet, "demo"), write_data(fleet, "sales")

    removed = run("remove", "demo")
    assert (removed.returncode, removed.stdout.strip()) == (0, "removed demo"), removed.stderr
    assert not (fleet / "repos" / "demo.yaml").exists()
    assert all(d.is_dir() for d in demo_data)
    purged = run("remove", "sales", "--purge-data")
    assert purged.returncode == 0, purged.stderr
    assert purged.stdout.strip() == "removed sales and its data"
    assert not any(d.exists() for d in sales_data) and all(d.is_dir() for d in demo_data)
    assert json.loads(run("list", "--json").stdout) == []
    gone = run("remove", "sales")
    assert gone.returncode == 1 and "404: unknown repo 'sales'" in gone.stderr


# ---- make targets: thin calls of the CLI ----------------------------------------------


def make(*args: str, env: dict[str, str], dry: bool = False) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", "-C", str(ROOT), *(["-n"] if dry else []), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_make_targets_expand_to_one_cli_call(tmp_path: Path, offline: dict[str, str]) -> None:
    cli_ = 'PATH="$HOME/.local/bin:$PATH" uv run --frozen dagfleet'
    f = f'--fleet "{tmp_path}"'
    expected = {
        ("add-repo", "REPO_URL=u", "REPO_NAME=n", "BRANCH=b"): (
            f'{cli_} repo add "n" --git-url "u" --branch "b" {f}'
        ),
        ("dev-add-repo", "REPO_URL=u", "REPO_NAME=n"): f'{cli_} repo add "n" --git-url "u"  {f}',
        ("update-repo", "REPO_NAME=n"): f'{cli_} repo sync "n" {f}',
        ("remove-repo", "REPO_NAME=n"): f'{cli_} repo remove "n" {f}',
        ("list-repos",): f"{cli_} repo list {f}",
        ("repo-logs", "REPO_NAME=n", "ENV=A"): f'{cli_} repo logs "n" --env "A" {f}',
        ("sync-repos",): f"{cli_} sync {f}",
        ("dev-with-repos",): f"{cli_} up {f}",
    }
    for args, command in expected.items():
        dry = make(*args, f"FLEET={tmp_path}", env=offline, dry=True)
        assert dry.returncode == 0, dry.stderr
        assert dry.stdout.splitlines() == ["scripts/bootstrap", command], args
    without = make("list-repos", env=offline, dry=True)
    assert without.stdout.splitlines()[-1] == f"{cli_} repo list "


@pytest.mark.slow
def test_make_repo_targets_offline(
    fleet: Path, sales: CodeRepo, offline: dict[str, str], tmp_path: Path
) -> None:
    fleet_var = f"FLEET={fleet}"
    added = make(
        "add-repo", f"REPO_URL={sales.url}", "REPO_NAME=sales", "BRANCH=B", fleet_var, env=offline
    )
    assert added.returncode == 0, added.stderr
    assert "added sales: locations sales-A, sales-B" in added.stdout
    assert repo_doc(fleet, "sales") == {"name": "sales", "git_url": sales.url, "branch": "B"}

    other = CodeRepo(tmp_path / "other-remote", name="other")
    dev_added = make(
        "dev-add-repo", f"REPO_URL={other.url}", "REPO_NAME=other", fleet_var, env=offline
    )
    assert dev_added.returncode == 0, dev_added.stderr
    assert repo_doc(fleet, "other") == {"name": "other", "git_url": other.url}

    listed = make("list-repos", fleet_var, env=offline)
    assert listed.returncode == 0, listed.stderr
    rows = {cells(line)[0] for line in listed.stdout.splitlines()[1:] if line.strip()}
    assert {"demo", "other", "sales"} <= rows
    assert "sales-B: not synced" in listed.stdout

    write_log(fleet, "sales-B", ["sales b says hi"])
    logs = make("repo-logs", "REPO_NAME=sales", "ENV=B", fleet_var, env=offline)
    assert logs.returncode == 0, logs.stderr
    assert "sales b says hi" in logs.stdout
    bad_env = make("repo-logs", "REPO_NAME=sales", "ENV=C", fleet_var, env=offline)
    assert bad_env.returncode != 0 and "unknown environment 'C'" in bad_env.stderr

    # Syncing needs a running fleet: both say so and change nothing.
    update = make("update-repo", "REPO_NAME=sales", fleet_var, env=offline)
    assert update.returncode != 0
    assert "no running fleet: start it with `dagfleet up`" in update.stderr
    sync = make("sync-repos", fleet_var, env=offline)
    assert sync.returncode != 0, sync.stderr
    assert "no running fleet: start it with `dagfleet up`" in flat(sync.stderr)

    for name in ("sales", "other"):
        removed = make("remove-repo", f"REPO_NAME={name}", fleet_var, env=offline)
        assert removed.returncode == 0, removed.stderr
        assert f"removed {name}" in removed.stdout
        assert not (fleet / "repos" / f"{name}.yaml").exists()
    assert sorted(p.name for p in (fleet / "repos").iterdir()) == ["demo.yaml"]

    # `dev-with-repos` is `up`: on a fleet that does not validate it reports and starts nothing.
    broken = write_fleet(tmp_path / "broken", {"bad": {"git_url": sales.url, "branch": "a b"}})
    up = make("dev-with-repos", f"FLEET={broken}", env=offline)
    assert up.returncode != 0
    said = flat(up.stderr)
    assert "repos/bad.yaml: branch: 'a b' is not a valid git ref" in said
    assert "nothing was started" in said
    assert not (broken / ".dagfleet").exists()
