"""MirrorPool: one fetch per repo shared by its locations, a refs snapshot per fetch, and
the listeners that hear when a fetch moved a branch (real git, file:// remotes)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from dagfleet.layout import Layout
from dagfleet.reconcile.context import MirrorPool
from tests.support.gitrepo import CodeRepo

pytestmark = pytest.mark.integration


@pytest.fixture
def repo(tmp_path: Path) -> CodeRepo:
    return CodeRepo(tmp_path / "remotes", name="sales")


@pytest.fixture
def pool(tmp_path: Path) -> MirrorPool:
    return MirrorPool(Layout(tmp_path / "state"))


def test_a_fetch_after_since_is_shared(pool: MirrorPool, repo: CodeRepo) -> None:
    before = time.monotonic()
    first = pool.fetch("sales", repo.url, before)
    assert first.refs is not None
    assert first.refs.commits == {"refs/heads/A": repo.tip("A"), "refs/heads/B": repo.tip("B")}
    new = repo.commit({"demo/extra.py": "x = 1\n"}, "second")
    repo.push("A")
    again = pool.fetch("sales", repo.url, before)
    assert pool.fetches == 1, "a fetch that started after `since` is reused"
    assert again.resolve("A") == first.resolve("A") != new
    fetched = pool.fetch("sales", repo.url, time.monotonic())
    assert pool.fetches == 2
    assert fetched.resolve("A") == new
    assert fetched.refs is not None and fetched.refs.commits["refs/heads/A"] == new


def test_listeners_hear_moved_refs_with_when_the_fetch_started(
    pool: MirrorPool, repo: CodeRepo
) -> None:
    heard: list[tuple[str, float]] = []
    pool.on_refs_changed(lambda name, started: heard.append((name, started)))
    pool.fetch("sales", repo.url, time.monotonic())
    assert heard == [], "the first fetch has nothing to compare with"
    pool.fetch("sales", repo.url, time.monotonic())
    assert heard == [], "nothing moved"
    assert (pool.remote_checks, pool.fetches) == (2, 1), "the remote was asked, not fetched"

    new = repo.commit({"demo/extra.py": "x = 1\n"}, "on B", branch="B")
    repo.push("B")
    asked = time.monotonic()
    pool.fetch("sales", repo.url, asked)
    ((name, started),) = heard
    assert name == "sales" and started >= asked
    # What a woken sibling does: a fetch "since just before" that one is that one.
    sibling = pool.fetch("sales", repo.url, started - 1e-6)
    assert (pool.remote_checks, pool.fetches) == (3, 2) and sibling.resolve("B") == new

    heard.clear()
    repo.remote.joinpath("refs", "tags").mkdir(exist_ok=True)
    subprocess.run(["git", "tag", "v1", new], cwd=repo.remote, check=True)
    pool.fetch("sales", repo.url, time.monotonic())
    assert [name for name, _ in heard] == ["sales"], "a new tag moves refs too"
    subprocess.run(["git", "branch", "-D", "B"], cwd=repo.remote, check=True, capture_output=True)
    gone = pool.fetch("sales", repo.url, time.monotonic())
    assert len(heard) == 2 and gone.resolve("B") is None
