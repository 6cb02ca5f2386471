"""The CLI changes only the fleet it means (issue 12, item 3).

Two fleets: "served" runs a real API (the real app over a real Reconciler whose
loops are never started, on a free port); "fresh" was just written by `dagfleet
init`, and its fleet.yaml names the served fleet's port as its own API address,
as two fleets on the default 127.0.0.1:3030 would. Run from the fresh fleet, the
CLI must refuse every change with exit 2, naming both fleets and the fixes, and
leave both fleets' repos/ untouched; reads go on with a warning.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from dagfleet.api import ApiServer, ApiSettings, create_app
from tests.support.fleetproc import DAGFLEET, free_port, write_fleet
from tests.support.gitrepo import CodeRepo
from tests.support.runtime import idle_runtime

pytestmark = pytest.mark.integration


def run(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    base = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DAGFLEET_API_URL", "DAGFLEET_API_TOKEN", "DAGFLEET_FLEET")
    }
    return subprocess.run(
        [DAGFLEET, *args],
        cwd=cwd,
        env={**base, "COLUMNS": "200", **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def snapshot(fleet: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((fleet / "repos").iterdir())}


def flat(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
def served(tmp_path: Path, code_repo: CodeRepo, port: int) -> Iterator[Path]:
    fields = {"git_url": code_repo.url, "module_name": "demo.definitions"}
    root = write_fleet(tmp_path / "served", {"demo": fields}, name="served")
    server = ApiServer(
        create_app(ApiSettings(fleet_dir=root), idle_runtime(root)), "127.0.0.1", port
    )
    server.start()
    try:
        yield root
    finally:
        server.stop()


@pytest.fixture
def fresh(tmp_path: Path, port: int) -> Path:
    root = tmp_path / "fresh"
    init = run("init", str(root), cwd=tmp_path)
    assert init.returncode == 0, init.stderr
    doc = yaml.safe_load((root / "fleet.yaml").read_text())
    doc["instance"] = {**(doc.get("instance") or {}), "api": {"port": port}}
    (root / "fleet.yaml").write_text(yaml.safe_dump(doc))
    return root


CHANGES = [
    pytest.param(["repo", "add", "sales", "--git-url", "/srv/git/sales.git"], id="repo-add"),
    pytest.param(["repo", "remove", "medallion"], id="repo-remove"),
    pytest.param(["repo", "suspend", "medallion"], id="repo-suspend"),
    pytest.param(["repo", "sync", "medallion"], id="repo-sync"),
    pytest.param(["sync"], id="sync"),
    pytest.param(["promote", "medallion", "--from", "A", "--to", "B"], id="promote"),
]


@pytest.mark.parametrize("args", CHANGES)
def test_changes_through_another_fleets_api_are_refused(
    served: Path, fresh: Path, args: list[str]
) -> None:
    before = (snapshot(served), snapshot(fresh))
    result = run(*args, cwd=fresh / "repos")  # found by walking up from repos/
    assert result.returncode == 2, (result.stdout, result.stderr)
    said = flat(result.stderr)
    assert "refusing to change another fleet" in said
    assert f"'served' at {served.resolve()}" in said
    assert f"'dagfleet' at {fresh.resolve()}" in said
    for fix in ("--api URL", "--fleet DIR", "cd into it"):
        assert fix in said
    assert result.stdout == ""
    assert (snapshot(served), snapshot(fresh)) == before


def test_explicit_api_url_of_another_fleet_is_refused_too(
    served: Path, fresh: Path, port: int
) -> None:
    before = (snapshot(served), snapshot(fresh))
    result = run(
        "repo", "add", "sales", "--git-url", "/srv/git/sales.git",
        "--api", f"http://127.0.0.1:{port}", "--fleet", str(fresh), "--no-discover",
        cwd=served.parent,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "refusing to change another fleet" in flat(result.stderr)
    assert (snapshot(served), snapshot(fresh)) == before


def test_reads_go_on_with_a_warning_from_the_fleet_meant(served: Path, fresh: Path) -> None:
    listed = run("repo", "list", "-o", "json", cwd=fresh)
    assert listed.returncode == 0, listed.stderr
    assert "warning" in listed.stderr and "'served'" in flat(listed.stderr)
    assert [r["name"] for r in json.loads(listed.stdout)] == ["medallion"]  # fresh's files


def test_the_right_fleet_is_changed_through_its_api(
    served: Path, fresh: Path, port: int, tmp_path: Path
) -> None:
    """The same API, asked from the fleet it serves, takes the change."""
    doc = yaml.safe_load((served / "fleet.yaml").read_text())
    doc["instance"] = {"api": {"port": port}}
    (served / "fleet.yaml").write_text(yaml.safe_dump(doc))
    other = CodeRepo(tmp_path / "other-remote", name="other")
    added = run("repo", "add", "other", "--git-url", other.url, "--no-wait", cwd=served)
    assert added.returncode == 0, added.stderr
    assert "no fleet is running" not in added.stdout  # it went through the API
    assert (served / "repos" / "other.yaml").is_file()
    assert sorted(snapshot(fresh)) == ["medallion.yaml"]
