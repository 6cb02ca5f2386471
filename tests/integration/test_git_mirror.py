"""Mirrors, refs, exports and the `current` link, against real git repositories in tmp_path."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest

from dagfleet.gitops import checkout
from dagfleet.gitops.git import GitError, Mirror
from tests.support.gitrepo import CodeRepo, git

pytestmark = pytest.mark.integration


@pytest.fixture
def repo(tmp_path: Path) -> CodeRepo:
    return CodeRepo(tmp_path / "remotes", name="sales")


@pytest.fixture
def mirror(tmp_path: Path, repo: CodeRepo) -> Mirror:
    m = Mirror(tmp_path / "state" / "git" / "sales.git", repo.url)
    m.ensure()
    return m


def test_ensure_clones_once_then_reuses(tmp_path: Path, repo: CodeRepo) -> None:
    m = Mirror(tmp_path / "git" / "sales.git", repo.url)
    assert m.ensure() is True
    assert (m.path / "HEAD").is_file()
    assert not m.path.with_name("sales.git.tmp").exists()
    marker = m.path / "dagfleet-marker"
    marker.write_text("still the same clone")
    assert m.ensure() is False
    assert marker.read_text() == "still the same clone"
    assert m.resolve("A") == repo.tip("A")


@pytest.mark.parametrize("spelling", ["file_url", "path"])
def test_local_path_and_file_url_both_work(tmp_path: Path, repo: CodeRepo, spelling: str) -> None:
    url = repo.url if spelling == "file_url" else str(repo.remote)
    m = Mirror(tmp_path / "m.git", url)
    assert m.ensure() is True
    assert m.resolve("B") == repo.tip("B")


def test_ensure_follows_a_changed_url(tmp_path: Path, repo: CodeRepo) -> None:
    m = Mirror(tmp_path / "m.git", repo.url)
    m.ensure()
    moved = tmp_path / "moved.git"
    repo.remote.rename(moved)
    again = Mirror(m.path, moved.as_uri())
    assert again.ensure() is False
    assert again.git("config", "--get", "remote.origin.url").strip() == moved.as_uri()
    again.fetch()


def test_fetch_follows_new_commits_force_pushes_and_deleted_branches(
    repo: CodeRepo, mirror: Mirror
) -> None:
    first = repo.tip("A")
    second = repo.commit({"demo/extra.py": "x = 1\n"}, "second")
    repo.push("A")
    assert mirror.resolve("A") == first, "nothing changes before a fetch"
    mirror.fetch()
    assert mirror.resolve("A") == second

    git("reset", "--quiet", "--hard", first, cwd=repo.work)
    repo.push("A", force=True)
    mirror.fetch()
    assert mirror.resolve("A") == first

    git("push", "--quiet", "origin", "--delete", "B", cwd=repo.work)
    mirror.fetch()
    assert mirror.resolve("B") is None
    assert mirror.resolve(first) == first, "commits of a deleted branch stay resolvable by SHA"


def test_fetch_of_a_vanished_remote_keeps_what_was_fetched(
    repo: CodeRepo, mirror: Mirror, tmp_path: Path
) -> None:
    tip = repo.tip("A")
    repo.remote.rename(tmp_path / "gone.git")
    with pytest.raises(GitError, match="fetch"):
        mirror.fetch()
    assert mirror.resolve("A") == tip


@pytest.mark.parametrize(
    ("case", "ref", "expected"),
    [
        ("branch", "A", "tip"),
        ("other branch", "B", "tip"),
        ("lightweight tag", "v1", "tip"),
        ("annotated tag resolves to its commit", "v2", "tip"),
        ("full SHA", "{tip}", "tip"),
        ("short SHA", "{short}", "tip"),
        ("unknown branch", "nope", None),
        ("unknown full SHA", "0" * 40, None),
        ("unknown short SHA", "0000000", None),
        ("a tree is not a commit", "{tree}", None),
        ("a tag of a tag resolves to the commit", "v3", "tip"),
        ("a tag of a tree is not a commit", "vtree", None),
    ],
)
@pytest.mark.parametrize("refs", ["git", "snapshot"])
def test_resolve(
    repo: CodeRepo, tmp_path: Path, case: str, ref: str, expected: str | None, refs: str
) -> None:
    """The same answers from git and from the refs snapshot a fetch takes (`read_refs`)."""
    tip = repo.tip("A")
    tree = git("rev-parse", f"{tip}^{{tree}}", cwd=repo.remote)
    git("tag", "v1", tip, cwd=repo.remote)
    git("tag", "-a", "-m", "release", "v2", tip, cwd=repo.remote)
    git("tag", "-a", "-m", "of a tag", "v3", "v2", cwd=repo.remote)
    git("tag", "-a", "-m", "of a tree", "vtree", tree, cwd=repo.remote)
    m = Mirror(tmp_path / "m.git", repo.url)
    m.ensure()
    if refs == "snapshot":
        m = replace(m, refs=m.read_refs())
    ref = ref.format(tip=tip, short=tip[:9], tree=tree)
    assert m.resolve(ref) == (tip if expected == "tip" else None)


def test_a_refs_snapshot_resolves_branches_without_git(tmp_path: Path, repo: CodeRepo) -> None:
    m = Mirror(tmp_path / "m.git", repo.url)
    m.ensure()
    snapshot = replace(m, refs=m.read_refs())
    assert snapshot.refs is not None
    assert snapshot.refs.commits == {"refs/heads/A": repo.tip("A"), "refs/heads/B": repo.tip("B")}
    m.path.rename(tmp_path / "elsewhere.git")  # git could not answer any more
    assert snapshot.resolve("A") == repo.tip("A")
    assert snapshot.resolve("nope") is None
    assert m.resolve("A") is None, "git without the mirror knows no branch"


@pytest.mark.parametrize("ref", ["-x", "--output=/tmp/x", "A B", "a..b", "x@{1}", ""])
def test_resolve_refuses_bad_refs(mirror: Mirror, ref: str) -> None:
    with pytest.raises(GitError, match="is not a valid git ref"):
        mirror.resolve(ref)


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("ext::sh -c touch% {marker}", "remote helper transport"),
        ("EXT::sh -c touch% {marker}", "remote helper transport"),
        ("--upload-pack=touch {marker}", "must not start with '-'"),
        ("-oProxyCommand=touch {marker}", "must not start with '-'"),
        ("relative/path.git", "not a supported git URL"),
    ],
)
def test_dangerous_urls_refused_before_git_runs(tmp_path: Path, url: str, why: str) -> None:
    marker = tmp_path / "pwned"
    m = Mirror(tmp_path / "git" / "x.git", url.format(marker=marker))
    with pytest.raises(GitError, match=why):
        m.ensure()
    assert not marker.exists()
    assert not (tmp_path / "git").exists(), "refused before anything was created or cloned"


def test_ssh_hostname_option_is_not_executed(tmp_path: Path) -> None:
    # Passes dagfleet's URL check; git itself must refuse the '-' host.
    marker = tmp_path / "pwned"
    m = Mirror(tmp_path / "x.git", f"ssh://-oProxyCommand=touch%20{marker}/repo")
    with pytest.raises(GitError):
        m.ensure()
    assert not marker.exists()
    assert not m.path.exists()


def test_existing_mirror_refuses_a_dangerous_new_url(tmp_path: Path, mirror: Mirror) -> None:
    marker = tmp_path / "pwned"
    bad = Mirror(mirror.path, f"ext::sh -c touch% {marker}")
    with pytest.raises(GitError, match="remote helper transport"):
        bad.ensure()
    assert mirror.git("config", "--get", "remote.origin.url").strip() == mirror.url


def test_export_writes_the_tree_without_git_metadata(
    tmp_path: Path, repo: CodeRepo, mirror: Mirror
) -> None:
    sha = repo.tip("A")
    dest = tmp_path / "checkouts" / "sales-A" / sha
    mirror.export(sha, dest)
    assert (dest / "demo" / "definitions.py").read_text().startswith("\nimport os")
    assert not (dest / ".git").exists()
    assert sorted(p.name for p in dest.parent.iterdir()) == [sha]
    (dest / "local-change").write_text("kept")
    mirror.export(sha, dest)
    assert (dest / "local-change").exists(), "an existing export is left alone"


@pytest.mark.parametrize("sha", ["0" * 40, "deadbeef" * 5])
def test_export_of_a_missing_commit_leaves_nothing(
    tmp_path: Path, mirror: Mirror, sha: str
) -> None:
    location = tmp_path / "checkouts" / "sales-A"
    with pytest.raises(GitError, match=f"cannot export {sha}"):
        mirror.export(sha, location / sha)
    assert list(location.iterdir()) == []


def test_export_replaces_a_stale_temp_dir(tmp_path: Path, repo: CodeRepo, mirror: Mirror) -> None:
    sha = repo.tip("A")
    location = tmp_path / "checkouts" / "sales-A"
    stale = location / f"{sha}.tmp"
    stale.mkdir(parents=True)
    (stale / "half-written.py").write_text("")
    mirror.export(sha, location / sha)
    assert sorted(p.name for p in location.iterdir()) == [sha]
    assert not (location / sha / "half-written.py").exists()


def exported(tmp_path: Path, repo: CodeRepo, mirror: Mirror, n: int) -> tuple[Path, list[str]]:
    location = tmp_path / "checkouts" / "sales-A"
    shas = [repo.tip("A")]
    for i in range(1, n):
        shas.append(repo.commit({f"demo/f{i}.py": f"x = {i}\n"}, f"c{i}"))
    repo.push("A")
    mirror.fetch()
    for sha in shas:
        mirror.export(sha, location / sha)
    return location, shas


def test_publish_swaps_current_atomically(tmp_path: Path, repo: CodeRepo, mirror: Mirror) -> None:
    location, (one, two) = exported(tmp_path, repo, mirror, 2)
    assert checkout.current_sha(location) is None
    checkout.publish(location, one)
    link = location / "current"
    assert link.is_symlink() and os.readlink(link) == one, "relative link, target is the SHA"
    assert checkout.current_sha(location) == one
    inode_before = os.lstat(link).st_ino
    checkout.publish(location, two)
    assert os.readlink(link) == two
    assert os.lstat(link).st_ino != inode_before, "a new link renamed over the old one"
    assert (link / "demo" / "f1.py").is_file()
    assert not [p for p in location.iterdir() if p.name.startswith(".current")]


def test_publish_refuses_a_missing_checkout(tmp_path: Path, repo: CodeRepo, mirror: Mirror) -> None:
    location, (one,) = exported(tmp_path, repo, mirror, 1)
    checkout.publish(location, one)
    with pytest.raises(FileNotFoundError, match="export it first"):
        checkout.publish(location, "f" * 40)
    assert os.readlink(location / "current") == one


def test_current_sha_ignores_a_dangling_link(tmp_path: Path) -> None:
    tmp_path.joinpath("current").symlink_to("a" * 40)
    assert checkout.current_sha(tmp_path) is None
    assert checkout.current_sha(tmp_path / "missing") is None


def test_collect_garbage_keeps_live_and_given(
    tmp_path: Path, repo: CodeRepo, mirror: Mirror
) -> None:
    location, (one, two, three, four) = exported(tmp_path, repo, mirror, 4)
    checkout.publish(location, three)
    (location / f"{four}.tmp").mkdir()
    (location / ".current.tmp-99999").symlink_to(one)
    removed = checkout.collect_garbage(location, keep={two})
    assert sorted(removed) == sorted([one, four, f"{four}.tmp"])
    assert sorted(p.name for p in location.iterdir()) == sorted(["current", two, three])
    assert checkout.current_sha(location) == three
    assert checkout.collect_garbage(location, keep=set()) == [two]
    assert checkout.collect_garbage(tmp_path / "no-such-location", keep=set()) == []


def test_is_ancestor(tmp_path: Path, repo: CodeRepo, mirror: Mirror) -> None:
    _, (one, two) = exported(tmp_path, repo, mirror, 2)
    git("checkout", "--quiet", "--orphan", "unrelated", cwd=repo.work)
    git("commit", "--quiet", "-m", "unrelated root", cwd=repo.work)
    other = git("rev-parse", "HEAD", cwd=repo.work)
    repo.push("unrelated")
    mirror.fetch()
    assert mirror.is_ancestor(one, two) is True
    assert mirror.is_ancestor(one, one) is True
    assert mirror.is_ancestor(two, one) is False
    assert mirror.is_ancestor(other, two) is False
    assert mirror.is_ancestor("0" * 40, two) is False


def test_fetch_with_known_refs_asks_the_remote_first(repo: CodeRepo, mirror: Mirror) -> None:
    known = mirror.read_refs()
    fetch_head = mirror.path / "FETCH_HEAD"
    assert mirror.fetch(known=known) is False, "nothing moved: no fetch"
    assert not fetch_head.exists()
    # Refs outside branches and tags (a forge's pull-request refs) do not count.
    git("update-ref", "refs/pull/1/head", repo.tip("A"), cwd=repo.remote)
    assert mirror.fetch(known=known) is False
    git("tag", "-a", "-m", "release", "v1", repo.tip("B"), cwd=repo.remote)
    assert mirror.fetch(known=known) is True, "a new tag is a move"
    assert fetch_head.exists()
    moved = mirror.read_refs()
    assert moved.objects["refs/tags/v1"] != moved.commits["refs/tags/v1"] == repo.tip("B")
    new = repo.commit({"demo/extra.py": "x = 1\n"}, "second")
    repo.push("A")
    assert mirror.fetch(known=moved) is True
    assert mirror.read_refs().commits["refs/heads/A"] == new
    assert mirror.fetch(known=mirror.read_refs()) is False
