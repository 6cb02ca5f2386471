"""`dagfleet audit` as a user runs it: the installed console script in a subprocess after
repo add / suspend / resume / remove / promote, offline (the fleet files; the OS user,
via offline) and through a running API (the token's name, via token, the client's
address), whose service records into a started `AuditWriter` as under `dagfleet up`.
`PromotingController` stands in for the live runtime's promotion (no git push here)."""

from __future__ import annotations

import getpass
import json
import os
import subprocess
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from dagfleet.api import ApiServer, ApiSettings, create_app
from dagfleet.audit.store import AuditStore
from dagfleet.audit.writer import AuditWriter
from dagfleet.control import ControlError, PromoteOutcome
from dagfleet.frontdoor.tokens import token_name
from dagfleet.layout import Layout
from dagfleet.offline import OfflineController
from dagfleet.service.identity import fleet_id
from tests.support.fleetproc import DAGFLEET, RunningFleet, free_port, wait_for, write_fleet
from tests.support.gitrepo import CodeRepo

pytestmark = pytest.mark.integration
TOKEN = "cli-audit-admin-token"
LIVE = "d" * 40


class PromotingController(OfflineController):
    """Answers a promotion like the live runtime would, without pushing anything."""

    def promote(self, repo: str, source: str, target: str, merge: bool) -> PromoteOutcome:
        if source == target:
            raise ControlError("source and target are the same", 409)
        return PromoteOutcome(repo, source, target, LIVE, target, previous="e" * 40)


def run(fleet_dir: Path, api: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DAGFLEET_")}
    env.update(COLUMNS="250", DAGFLEET_API_URL=api, DAGFLEET_API_TOKEN=TOKEN)
    return subprocess.run(
        [DAGFLEET, *args, "--fleet", str(fleet_dir)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=120,
    )


@pytest.fixture
def fleet_dir(tmp_path: Path) -> Path:
    return write_fleet(tmp_path / "fleet", {})


@pytest.fixture
def offline() -> str:
    return f"http://127.0.0.1:{free_port()}"  # nobody listens: the CLI uses the files


@pytest.fixture
def online(fleet_dir: Path) -> Iterator[str]:
    layout = Layout.for_fleet(fleet_dir)
    writer = AuditWriter(
        AuditStore(f"sqlite:///{layout.root / 'history.db'}"), fleet_id(layout)
    ).start()
    settings = ApiSettings(fleet_dir=fleet_dir, tokens={TOKEN: "admin"})
    app = create_app(settings, PromotingController(fleet_dir), audit=writer)
    server = ApiServer(app, "127.0.0.1", free_port())
    server.start()
    try:
        yield server.url
    finally:
        server.stop()
        writer.close()


def _changes(fleet_dir: Path, api: str, url: str) -> list[int]:
    """Add, suspend, resume, promote and remove `sales`; each command's exit code."""
    return [
        run(fleet_dir, api, "repo", "add", "sales", "--git-url", url, "--no-wait").returncode,
        run(fleet_dir, api, "repo", "suspend", "sales").returncode,
        run(fleet_dir, api, "repo", "resume", "sales").returncode,
        run(fleet_dir, api, "promote", "sales", "--from", "A", "--to", "B").returncode,
        run(fleet_dir, api, "repo", "remove", "sales").returncode,
    ]


def _log(fleet_dir: Path, api: str, *filters: str) -> list[dict[str, Any]]:
    shown = run(fleet_dir, api, "audit", "-o", "json", *filters)
    assert shown.returncode == 0, shown.stderr
    entries: list[dict[str, Any]] = json.loads(shown.stdout)
    return entries


def _check_order_and_times(entries: list[dict[str, Any]]) -> None:
    ids = [e["id"] for e in entries]
    assert ids == sorted(ids, reverse=True)
    times = [datetime.fromisoformat(e["at"]) for e in entries]
    assert times == sorted(times, reverse=True) and all(t.utcoffset() is not None for t in times)


def test_offline_changes_are_the_os_users(
    fleet_dir: Path, offline: str, code_repo: CodeRepo
) -> None:
    assert _changes(fleet_dir, offline, code_repo.url) == [0, 0, 0, 3, 0]  # promote: no fleet
    entries = _log(fleet_dir, offline)
    _check_order_and_times(entries)
    assert [(e["action"], e["outcome"]) for e in entries] == [
        ("repo.remove", "allowed"),
        ("promote", "failed"),
        ("repo.resume", "allowed"),
        ("repo.suspend", "allowed"),
        ("repo.add", "allowed"),
    ]
    assert {(e["actor"], e["via"], e["client"]) for e in entries} == {
        (getpass.getuser(), "offline", None)
    }
    assert {e["repository"] for e in entries} == {"sales"}
    promote = entries[1]
    assert promote["environment"] == "B" and "no running fleet" in promote["detail"]
    assert entries[-1]["target"] == "repos/sales.yaml"
    only = _log(fleet_dir, offline, "--action", "repo.add", "--since", "1h")
    assert [e["id"] for e in only] == [entries[-1]["id"]]
    page = _log(fleet_dir, offline, "--limit", "2", "--before", str(entries[1]["id"]))
    assert [e["action"] for e in page] == ["repo.resume", "repo.suspend"]
    table = run(fleet_dir, offline, "audit", "--limit", "2")
    header, *rows = table.stdout.splitlines()
    assert header.split() == ["ID", "AT", "ACTOR", "ACTION", "OUTCOME", "WHERE", "TARGET", "DETAIL"]
    assert "repo.remove" in rows[0] and "promote" in rows[1] and "failed" in rows[1]
    bad = run(fleet_dir, offline, "audit", "--since", "yesterday")
    assert bad.returncode == 2 and "since: 'yesterday' is not a time" in bad.stderr


def test_changes_through_the_api_are_the_tokens(
    fleet_dir: Path, online: str, code_repo: CodeRepo
) -> None:
    assert _changes(fleet_dir, online, code_repo.url) == [0, 0, 0, 0, 0]
    entries = _log(fleet_dir, online)
    _check_order_and_times(entries)
    assert [(e["action"], e["outcome"]) for e in entries] == [
        ("repo.remove", "allowed"),
        ("promote", "allowed"),
        ("repo.resume", "allowed"),
        ("repo.suspend", "allowed"),
        ("repo.add", "allowed"),
    ]
    assert {(e["actor"], e["via"], e["client"]) for e in entries} == {
        (token_name(TOKEN), "token", "127.0.0.1")
    }
    promote = entries[1]
    assert (promote["repository"], promote["environment"], promote["target"]) == (
        "sales",
        "B",
        LIVE,
    )
    assert json.loads(promote["detail"])["source"] == "A"
    mine = _log(fleet_dir, online, "--actor", token_name(TOKEN), "--action", "promote")
    assert [e["id"] for e in mine] == [promote["id"]]
    assert _log(fleet_dir, online, "--actor", "somebody-else") == []
    wide = run(fleet_dir, online, "audit", "-o", "wide", "--limit", "1")
    assert "VIA" in wide.stdout.splitlines()[0] and "127.0.0.1" in wide.stdout
    bad = run(fleet_dir, online, "audit", "--since", "yesterday")
    assert bad.returncode == 2 and "since: 'yesterday' is not a time" in bad.stderr


@pytest.mark.slow
def test_dagfleet_up_records_into_its_writer(
    tmp_path: Path, code_repo: CodeRepo, start_fleet: Callable[..., RunningFleet]
) -> None:
    """`dagfleet up` hands FleetApp.audit to its API: a change through it is in the log,
    read through the API while it runs and from the files after it stopped."""
    fleet_dir = write_fleet(tmp_path / "fleet", {})
    fleet = start_fleet(fleet_dir, extra=["--no-daemon"])
    api = fleet.api.removesuffix("/api/v1")
    wait_for(lambda: httpx.get(f"{fleet.api}/healthz", timeout=2).is_success or None, 120, "API")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DAGFLEET_")}
    add = ["repo", "add", "sales", "--git-url", code_repo.url, "--no-wait"]
    added = subprocess.run(
        [DAGFLEET, *add, "--fleet", str(fleet_dir), "--api", api],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=120,
    )
    assert added.returncode == 0, added.stderr
    (entry,) = _log_env(fleet_dir, api, env)
    assert (entry["action"], entry["repository"], entry["outcome"]) == (
        "repo.add",
        "sales",
        "allowed",
    )
    # The CLI on this machine uses the fleet's local token (.dagfleet/api.token).
    assert (entry["actor"], entry["via"], entry["client"]) == ("local-cli", "token", "127.0.0.1")
    fleet.stop()
    unused = f"http://127.0.0.1:{free_port()}"
    assert _log_env(fleet_dir, unused, env) == [entry]  # from the database, no fleet running


def _log_env(fleet_dir: Path, api: str, env: dict[str, str]) -> list[dict[str, Any]]:
    shown = subprocess.run(
        [DAGFLEET, "audit", "-o", "json", "--fleet", str(fleet_dir), "--api", api],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=120,
    )
    assert shown.returncode == 0, shown.stderr
    entries: list[dict[str, Any]] = json.loads(shown.stdout)
    return entries
