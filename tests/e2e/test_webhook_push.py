"""Scenario: with polling effectively off, a signed GitHub push webhook makes A
serve the new commit at once; a bad signature is refused."""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
import time
from pathlib import Path

import httpx

from tests.e2e.conftest import demo_fleet, with_asset
from tests.support.fleetproc import DAGFLEET, wait_for
from tests.support.gitrepo import CodeRepo

SECRET = "e2e-webhook-secret"


def test_signed_push_syncs_at_once(tmp_path: Path, code_repo: CodeRepo, start_fleet) -> None:
    fleet = start_fleet(
        demo_fleet(tmp_path, code_repo, poll_interval=3600),
        extra=["--no-daemon"],
        env={"DAGFLEET_WEBHOOK_SECRET": SECRET},
    )
    fleet.wait_loaded({"demo-A", "demo-B"})
    code_repo.commit({"demo/definitions.py": with_asset("hooked")}, "hooked")
    code_repo.push("A")
    body = json.dumps({"ref": "refs/heads/A", "repository": {"clone_url": code_repo.url}}).encode()
    signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    headers = {"X-GitHub-Event": "push", "Content-Type": "application/json"}

    bad = httpx.post(
        f"{fleet.api}/hooks/git",
        content=body,
        headers={**headers, "X-Hub-Signature-256": "sha256=" + "0" * 64},
    )
    assert bad.status_code == 401
    started = time.monotonic()
    good = httpx.post(
        f"{fleet.api}/hooks/git",
        content=body,
        headers={**headers, "X-Hub-Signature-256": signature},
    )
    assert good.status_code in (200, 202), good.text
    wait_for(lambda: "hooked" in fleet.gql.asset_keys("demo-A"), 60, "webhook-triggered sync")
    print(f"webhook to visible: {time.monotonic() - started:.2f}s")
    assert "hooked" not in fleet.gql.asset_keys("demo-B")

    # `dagfleet sync` does the same on demand and says what changed.
    before = fleet.commit("demo-A")
    after = code_repo.commit({"demo/definitions.py": with_asset("synced")}, "synced")
    code_repo.push("A")
    result = subprocess.run(
        [
            DAGFLEET,
            "sync",
            "demo",
            "--env",
            "A",
            "--fleet",
            str(fleet.fleet_dir),
            "--api",
            fleet.api.removesuffix("/api/v1"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert f"demo-A: {before[:12]} -> {after[:12]}" in result.stdout
    assert fleet.commit("demo-A") == after
    wait_for(lambda: "synced" in fleet.gql.asset_keys("demo-A"), 10, "synced asset")
