"""A failed fetch says which mirror and which remote, never the remote's credentials.

Real git: a mirror cloned from a real remote, then the remote disappears (a local
bare repository moved away; an HTTP git server stopped) and the next fetch fails.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from dagfleet.gitops.git import GitError, Mirror
from tests.support.githttp import GitHttpServer
from tests.support.gitrepo import CodeRepo

pytestmark = pytest.mark.integration
TOKEN = "s3cr3t-fetch-token"


@pytest.fixture
def repo(tmp_path: Path) -> CodeRepo:
    return CodeRepo(tmp_path / "remotes", name="sales")


@pytest.fixture
def http(repo: CodeRepo) -> Iterator[GitHttpServer]:
    server = GitHttpServer(repo.remote.parent, users={repo.remote.name: ("deploy", TOKEN)}).start()
    try:
        yield server
    finally:
        server.stop()


def test_a_gone_local_remote_names_the_mirror_and_the_remote(
    repo: CodeRepo, tmp_path: Path
) -> None:
    mirror = Mirror(tmp_path / "state" / "git" / "sales.git", repo.url)
    mirror.ensure()
    repo.remote.rename(tmp_path / "gone.git")
    with pytest.raises(GitError) as err:
        mirror.fetch()
    message = str(err.value)
    assert "--git-dir fetch" not in message
    assert f"cannot fetch {repo.url} into the mirror {mirror.path}" in message, message
    assert "git fetch --prune" in message  # the command that failed
    assert "does not appear to be a git repository" in message  # git's own words


def test_a_gone_http_remote_is_named_without_its_credentials(
    repo: CodeRepo, http: GitHttpServer, tmp_path: Path
) -> None:
    plain = http.url(repo.remote.name)
    with_token = plain.replace("http://", f"http://deploy:{TOKEN}@")
    mirror = Mirror(tmp_path / "state" / "git" / "sales.git", with_token)
    mirror.ensure()
    http.stop()
    with pytest.raises(GitError) as err:
        mirror.fetch()
    message = str(err.value)
    assert f"cannot fetch {plain} into the mirror {mirror.path}" in message, message
    assert TOKEN not in message and "deploy:" not in message


def test_a_failed_clone_does_not_show_credentials_either(
    repo: CodeRepo, http: GitHttpServer, tmp_path: Path
) -> None:
    url = http.url(repo.remote.name).replace("http://", f"http://deploy:{TOKEN}@")
    http.stop()
    mirror = Mirror(tmp_path / "state" / "git" / "sales.git", url)
    with pytest.raises(GitError) as err:
        mirror.ensure()
    message = str(err.value)
    assert TOKEN not in message and "deploy:" not in message, message
    assert "git clone --mirror" in message and str(mirror.path) in message
