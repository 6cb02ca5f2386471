"""`dagfleet history`, `rollback`, `unpin` and `logs` as a user runs them: the installed
console script in a subprocess, offline (the fleet files and history database) and
online (the real API app over the same fleet, with `PinningController` standing in
for the live runtime)."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from dagfleet.api import ApiServer, ApiSettings, create_app
from dagfleet.control import SyncOutcome
from tests.integration.test_api_locations import C1, C2, PinningController, history_fleet
from tests.support.fleetproc import DAGFLEET, free_port

pytestmark = pytest.mark.integration
TOKEN = "cli-history-admin"


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


class FailingController(PinningController):
    """The pinned commit does not load: the location keeps serving what it served."""

    def sync(self, repo: str | None, env: str | None, wait: bool) -> list[SyncOutcome]:
        self.syncs.append((repo, env))
        return [
            SyncOutcome(
                f"{repo}-{env}",
                False,
                C2,
                error="ImportError: no module named x",
                reason="DefinitionsInvalid",
            )
        ]


@pytest.fixture
def fleet_dir(tmp_path: Path) -> Path:
    return history_fleet(tmp_path)


@pytest.fixture
def offline() -> str:
    return f"http://127.0.0.1:{free_port()}"  # nobody listens: the CLI uses the files


def _serve(fleet_dir: Path, controller: PinningController) -> ApiServer:
    settings = ApiSettings(fleet_dir=fleet_dir, tokens={TOKEN: "admin"})
    server = ApiServer(create_app(settings, controller), "127.0.0.1", free_port())
    server.start()
    return server


@pytest.fixture
def online(fleet_dir: Path) -> Iterator[str]:
    server = _serve(fleet_dir, PinningController(fleet_dir))
    try:
        yield server.url
    finally:
        server.stop()


def test_history_offline_table_and_json(fleet_dir: Path, offline: str) -> None:
    table = run(fleet_dir, offline, "history", "demo-A")
    assert table.returncode == 0, table.stderr
    header, *rows = table.stdout.splitlines()
    assert header.split()[:4] == ["STARTED", "COMMIT", "OUTCOME", "REASON"]
    assert [r.split()[2] for r in rows] == ["ffffffffffff", C2[:12], C1[:12]]
    assert "failed" in rows[0] and "DefinitionsInvalid" in rows[0] and "commit b" in rows[1]
    wide = run(fleet_dir, offline, "history", "demo-A", "-o", "wide", "--limit", "1")
    assert "install=8.0 load=1.0" in wide.stdout and C2 in wide.stdout  # previous, full
    doc = json.loads(run(fleet_dir, offline, "history", "demo-A", "-o", "json").stdout)
    assert [a["commit"] for a in doc] == ["f" * 40, C2, C1]
    missing = run(fleet_dir, offline, "history", "nope-A")
    assert missing.returncode == 1 and "unknown location 'nope-A'" in missing.stderr
    assert "dagfleet status" in missing.stderr


def test_history_online(fleet_dir: Path, online: str) -> None:
    doc = json.loads(
        run(fleet_dir, online, "history", "demo-A", "--limit", "2", "-o", "json").stdout
    )
    assert [a["commit"] for a in doc] == ["f" * 40, C2]


def test_rollback_and_unpin_online(fleet_dir: Path, online: str) -> None:
    back = run(fleet_dir, online, "rollback", "demo-A")
    assert back.returncode == 0, back.stderr
    assert f"pinned demo in A to {C1[:12]} in repos/demo.yaml" in back.stdout
    assert f"demo-A: none -> {C1[:12]}" in back.stdout or C1[:12] in back.stdout
    pins = yaml.safe_load((fleet_dir / "repos" / "demo.yaml").read_text())["pins"]
    assert pins == {"A": C1}
    bad = run(fleet_dir, online, "rollback", "demo-A", "--to", "main")
    assert bad.returncode == 2 and "--to" in bad.stderr and "not a commit SHA" in bad.stderr
    unpinned = run(fleet_dir, online, "unpin", "demo-A")
    assert unpinned.returncode == 0, unpinned.stderr
    assert f"pin {C1[:12]} removed from repos/demo.yaml" in unpinned.stdout
    assert "pins" not in yaml.safe_load((fleet_dir / "repos" / "demo.yaml").read_text())


def test_rollback_that_does_not_go_live_exits_1(fleet_dir: Path) -> None:
    server = _serve(fleet_dir, FailingController(fleet_dir))
    try:
        result = run(fleet_dir, server.url, "rollback", "demo-A", "--to", C1)
    finally:
        server.stop()
    assert result.returncode == 1, result.stderr
    assert "DefinitionsInvalid" in result.stdout and "not serving" in result.stderr


def test_rollback_offline_writes_the_pin_and_exits_3(fleet_dir: Path, offline: str) -> None:
    result = run(fleet_dir, offline, "rollback", "demo-A")
    assert result.returncode == 3, result.stderr
    assert "no running fleet" in result.stderr and "dagfleet up" in result.stderr
    assert yaml.safe_load((fleet_dir / "repos" / "demo.yaml").read_text())["pins"] == {"A": C1}


def test_logs(fleet_dir: Path, offline: str, online: str) -> None:
    for api in (offline, online):
        one = run(fleet_dir, api, "logs", "dagfleet", "--tail", "1")
        assert one.returncode == 0 and one.stdout == "history in sqlite\n", one.stderr
        every = run(fleet_dir, api, "logs").stdout
        assert "[webserver] Serving dagster-webserver" in every
        assert "[demo-A] loaded demo" in every
        unknown = run(fleet_dir, api, "logs", "nope")
        assert unknown.returncode == 1 and "unknown log source 'nope'" in unknown.stderr
