"""A repo's locations share its fetches: when one location's fetch moves another
environment's branch, that location publishes from it at once, with no fetch or poll of
its own (real reconciler, loops, git and code servers)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from dagfleet.reconcile.manager import Reconciler
from tests.support.fleetproc import wait_for, write_fleet
from tests.support.gitrepo import CodeRepo
from tests.support.runtime import idle_runtime

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def runtime(code_repo: CodeRepo, tmp_path: Path) -> Iterator[Reconciler]:
    # Polls an hour apart: only the sync below and what it wakes can fetch.
    repo = {"git_url": code_repo.url, "module_name": "demo.definitions", "poll_interval": 3600}
    reconciler = idle_runtime(write_fleet(tmp_path / "fleet", {"demo": repo}))
    reconciler.start()
    try:
        yield reconciler
    finally:
        reconciler.stop()


def commit_of(runtime: Reconciler, location: str) -> str | None:
    (status,) = [s for s in runtime.statuses() if s.location == location]
    return status.commit


def wait_commit(runtime: Reconciler, location: str, sha: str, timeout: float = 180) -> None:
    wait_for(lambda: commit_of(runtime, location) == sha, timeout, f"{location} at {sha[:12]}")


def test_a_fetch_that_moves_a_branch_wakes_its_location(
    runtime: Reconciler, code_repo: CodeRepo
) -> None:
    wait_commit(runtime, "demo-A", code_repo.tip("A"))
    wait_commit(runtime, "demo-B", code_repo.tip("B"))
    mirrors = runtime.ctx.mirrors
    at_start = mirrors.remote_checks
    assert at_start <= 2, "the first polls of A and B ask the remote at most once each"

    new_b = code_repo.commit({"demo/extra.py": "x = 1\n"}, "on B", branch="B")
    code_repo.push("B")
    (outcome,) = runtime.sync("demo", "A", wait=True)  # fetches for A only
    assert outcome.error is None and outcome.commit == code_repo.tip("A")
    wait_commit(runtime, "demo-B", new_b)
    assert mirrors.remote_checks == at_start + 1, "demo-B published from demo-A's fetch"
