"""Exports are the repository's real tree, as git-sync checks it out: submodules (nested,
at the recorded commit), Git LFS content, `export-ignore` paths; safe to kill at any time."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dagfleet.gitops.git import GitError, Mirror
from tests.support.gitrepo import CodeRepo, git

pytestmark = pytest.mark.integration

# The test's own `git submodule add` of a local repo: file:// submodules are "user"-only
# since git 2.38.1 (CVE-2022-39253); dagfleet allows them only for local repos.
FILE_OK = ["-c", "protocol.file.allow=always"]
HAS_LFS = shutil.which("git-lfs") is not None


def bare_repo(root: Path, name: str, files: dict[str, str]) -> Path:
    """A bare remote `<root>/<name>.git` with one commit of `files` on main."""
    work = root / f"{name}-work"
    work.mkdir(parents=True)
    git("init", "--quiet", "--initial-branch", "main", cwd=work)
    for rel, text in files.items():
        (work / rel).parent.mkdir(parents=True, exist_ok=True)
        (work / rel).write_text(text)
    git("add", "-A", cwd=work)
    git("commit", "--quiet", "-m", f"{name} v1", cwd=work)
    remote = root / f"{name}.git"
    subprocess.run(["git", "clone", "--bare", "--quiet", str(work), str(remote)], check=True)
    git("remote", "add", "origin", str(remote), cwd=work)
    return remote


def commit_all(work: Path, message: str) -> str:
    git("add", "-A", cwd=work)
    git("commit", "--quiet", "-m", message, cwd=work)
    return git("rev-parse", "HEAD", cwd=work)


def snapshot(path: Path) -> dict[str, bytes]:
    """Every file of a directory with its content: nothing added, nothing changed.

    (Not mtimes: git may "freshen" a borrowed pack's mtime when it hashes a blob it
    already has, which only protects that pack from pruning.)
    """
    return {
        str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()
    }


@pytest.fixture
def repo(tmp_path: Path) -> CodeRepo:
    return CodeRepo(tmp_path / "remotes", name="sales")


def mirror_of(tmp_path: Path, repo: CodeRepo) -> Mirror:
    m = Mirror(tmp_path / "state" / "git" / "sales.git", repo.url)
    m.ensure()
    return m


def with_nested_submodules(repo: CodeRepo) -> tuple[str, str]:
    """sales -> vendor/mid (relative URL ../mid.git) -> lib/leaf (relative ../leaf.git).

    Returns (the superproject's commit, the leaf commit it records); the leaf's
    remote then moves on, so a checkout of the tip would be visibly wrong.
    """
    root = repo.remote.parent
    leaf = bare_repo(root, "leaf", {"leaf.txt": "leaf v1\n"})
    mid = bare_repo(root, "mid", {"mid.txt": "mid v1\n"})
    mid_work = root / "mid-work"
    git(*FILE_OK, "submodule", "add", "--quiet", "../leaf.git", "lib/leaf", cwd=mid_work)
    commit_all(mid_work, "mid: add leaf")
    git("push", "--quiet", "origin", "main", cwd=mid_work)
    recorded_leaf = git("rev-parse", "HEAD", cwd=mid_work / "lib" / "leaf")
    git(*FILE_OK, "submodule", "add", "--quiet", "../mid.git", "vendor/mid", cwd=repo.work)
    sha = commit_all(repo.work, "add vendor/mid")
    repo.push("A")
    # The leaf moves on after being recorded: the export must show the recorded commit.
    leaf_work = root / "leaf-work"
    (leaf_work / "leaf.txt").write_text("leaf v2\n")
    commit_all(leaf_work, "leaf v2")
    git("push", "--quiet", "origin", "main", cwd=leaf_work)
    assert leaf.is_dir() and mid.is_dir()
    return sha, recorded_leaf


def test_export_has_nested_submodules_at_their_recorded_commits(
    tmp_path: Path, repo: CodeRepo
) -> None:
    sha, _ = with_nested_submodules(repo)
    mirror = mirror_of(tmp_path, repo)
    before = snapshot(mirror.path)
    dest = tmp_path / "checkouts" / "sales-A" / sha
    mirror.export(sha, dest)
    assert (dest / "demo" / "definitions.py").is_file()
    assert (dest / "vendor" / "mid" / "mid.txt").read_text() == "mid v1\n"
    assert (dest / "vendor" / "mid" / "lib" / "leaf" / "leaf.txt").read_text() == "leaf v1\n", (
        "the commit the parent records, not the leaf's newer tip"
    )
    assert not [p for p in dest.rglob(".git")], "no .git dir or gitfile is left in a checkout"
    assert (dest / ".gitmodules").is_file()
    assert sorted(p.name for p in dest.parent.iterdir()) == [sha]
    assert snapshot(mirror.path) == before, "the mirror is only read"
    assert not (mirror.path / "modules").exists()


def test_relative_submodule_urls_resolve_against_the_remote_not_the_mirror(
    tmp_path: Path, repo: CodeRepo
) -> None:
    sha, _ = with_nested_submodules(repo)
    # Resolved against the mirror (<tmp>/state/git/), ../mid.git would be a clone of a
    # repository that does not exist there; plant a decoy to make a wrong resolution visible.
    decoy = bare_repo(tmp_path / "state" / "decoy", "mid", {"mid.txt": "decoy\n"})
    shutil.move(decoy, tmp_path / "state" / "git" / "mid.git")
    mirror = mirror_of(tmp_path, repo)
    dest = tmp_path / "out" / sha
    mirror.export(sha, dest)
    assert (dest / "vendor" / "mid" / "mid.txt").read_text() == "mid v1\n"


def test_a_missing_submodule_remote_fails_the_export_and_leaves_nothing(
    tmp_path: Path, repo: CodeRepo
) -> None:
    sha, _ = with_nested_submodules(repo)
    (repo.remote.parent / "leaf.git").rename(tmp_path / "gone.git")
    mirror = mirror_of(tmp_path, repo)
    location = tmp_path / "checkouts" / "sales-A"
    with pytest.raises(GitError, match=f"cannot export {sha}.*submodule"):
        mirror.export(sha, location / sha)
    assert list(location.iterdir()) == []


def test_export_ignore_paths_are_checked_out(tmp_path: Path, repo: CodeRepo) -> None:
    sha = repo.commit(
        {
            ".gitattributes": "fixtures/** export-ignore\nsetup.cfg export-ignore\n",
            "fixtures/data.csv": "a,b\n1,2\n",
            "setup.cfg": "[metadata]\nname = demo\n",
        },
        "export-ignore some files",
    )
    repo.push("A")
    mirror = mirror_of(tmp_path, repo)
    dest = tmp_path / "out" / sha
    mirror.export(sha, dest)
    assert (dest / "fixtures" / "data.csv").read_text() == "a,b\n1,2\n"
    assert (dest / "setup.cfg").is_file()


def lfs_pointer(data: bytes) -> str:
    oid = hashlib.sha256(data).hexdigest()
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{oid}\nsize {len(data)}\n"


@pytest.mark.skipif(not HAS_LFS, reason="git-lfs is not installed (apt-get install git-lfs)")
def test_lfs_files_have_their_real_content(tmp_path: Path, repo: CodeRepo) -> None:
    data = os.urandom(4096)
    git("lfs", "install", "--local", cwd=repo.work)
    git("lfs", "track", "models/*.bin", cwd=repo.work)
    (repo.work / "models").mkdir()
    (repo.work / "models" / "weights.bin").write_bytes(data)
    sha = commit_all(repo.work, "weights in LFS")
    repo.push("A")
    # The objects live in the file:// remote's lfs/ store (git-lfs standalone file transfer).
    assert git("cat-file", "-p", f"{sha}:models/weights.bin", cwd=repo.remote) == (
        lfs_pointer(data).strip()
    )
    assert list((repo.remote / "lfs" / "objects").rglob("*")), "pushed to the remote's LFS store"
    mirror = mirror_of(tmp_path, repo)
    before = snapshot(mirror.path)
    dest = tmp_path / "out" / sha
    mirror.export(sha, dest)
    assert (dest / "models" / "weights.bin").read_bytes() == data
    assert not (dest / ".git").exists()
    assert snapshot(mirror.path) == before, "LFS objects are not cached in the mirror"


def test_lfs_without_git_lfs_is_a_clear_error(
    tmp_path: Path, repo: CodeRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Written by hand, so the test needs no git-lfs: the attribute and a pointer file.
    sha = repo.commit(
        {
            ".gitattributes": "*.bin filter=lfs diff=lfs merge=lfs -text\n",
            "weights.bin": lfs_pointer(b"real weights"),
        },
        "LFS pointer",
    )
    # Where git-lfs is installed, its pre-push hook would look for the object: skip hooks.
    git("-c", "core.hooksPath=/dev/null", "push", "--quiet", "origin", "A:A", cwd=repo.work)
    mirror = mirror_of(tmp_path, repo)
    # A PATH with git and nothing else hides git-lfs (both live in /usr/bin on Debian).
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    real_git = shutil.which("git")
    assert real_git is not None
    (bin_dir / "git").symlink_to(real_git)
    monkeypatch.setenv("PATH", str(bin_dir))
    location = tmp_path / "checkouts" / "sales-A"
    with pytest.raises(GitError, match=r"git-lfs is not installed.*apt-get install git-lfs"):
        mirror.export(sha, location / sha)
    assert not location.exists() or list(location.iterdir()) == []


def test_a_leftover_temp_dir_of_an_interrupted_export_is_replaced(
    tmp_path: Path, repo: CodeRepo
) -> None:
    sha, _ = with_nested_submodules(repo)
    mirror = mirror_of(tmp_path, repo)
    location = tmp_path / "checkouts" / "sales-A"
    stale = location / f"{sha}.tmp"
    (stale / ".git").mkdir(parents=True)
    (stale / ".git" / "index.lock").write_text("")
    (stale / "vendor").mkdir()
    (stale / "vendor" / "half.py").write_text("")
    mirror.export(sha, location / sha)
    assert sorted(p.name for p in location.iterdir()) == [sha]
    assert not (location / sha / "vendor" / "half.py").exists()
    assert (location / sha / "vendor" / "mid" / "lib" / "leaf" / "leaf.txt").is_file()


_EXPORT = """
import sys
from pathlib import Path
from dagfleet.gitops.git import Mirror
Mirror(Path(sys.argv[1]), sys.argv[2]).export(sys.argv[3], Path(sys.argv[4]))
"""


def test_kill_9_at_any_moment_then_export_again(tmp_path: Path, repo: CodeRepo) -> None:
    sha, _ = with_nested_submodules(repo)
    mirror = mirror_of(tmp_path, repo)
    before = snapshot(mirror.path)
    location = tmp_path / "checkouts" / "sales-A"
    dest = location / sha
    killed_midway = 0
    for delay in (0.0, 0.02, 0.05, 0.1, 0.2):
        shutil.rmtree(location, ignore_errors=True)
        child = subprocess.Popen(
            [sys.executable, "-c", _EXPORT, str(mirror.path), mirror.url, sha, str(dest)],
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while not location.exists() and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.002)  # the export has begun once its temp dir's parent exists
        try:
            time.sleep(delay)
        finally:
            os.killpg(child.pid, signal.SIGKILL)  # the child and the git processes it started
            child.wait()
        # Either nothing, a temp dir, or (if it finished) the complete checkout.
        names = {p.name for p in location.iterdir()} if location.exists() else set()
        assert names <= {sha, f"{sha}.tmp"}
        if f"{sha}.tmp" in names:
            killed_midway += 1
        if sha in names:
            assert (dest / "vendor" / "mid" / "lib" / "leaf" / "leaf.txt").is_file()
        mirror.export(sha, dest)
        assert sorted(p.name for p in location.iterdir()) == [sha]
        assert (dest / "vendor" / "mid" / "lib" / "leaf" / "leaf.txt").read_text() == "leaf v1\n"
        assert snapshot(mirror.path) == before
    assert killed_midway, "at least one kill landed during an export"
