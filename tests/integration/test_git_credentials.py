"""Private remotes: each repo's own token (or deploy key) reaches git through its
environment only, never the mirror's config, its URL, an error message or a helper's store."""

from __future__ import annotations

import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest

from dagfleet.gitops.auth import GitAuth, credential_scope, resolve, ssh_command
from dagfleet.gitops.git import GitError, Mirror
from dagfleet.layout import Layout
from dagfleet.reconcile.context import MirrorPool
from dagfleet.spec.credentials import GitCredentials
from tests.support.githttp import GitHttpServer
from tests.support.gitrepo import CodeRepo, git

pytestmark = pytest.mark.integration

SALES_TOKEN = "s3cr3t-sales-token-0123456789"
BILLING_TOKEN = "s3cr3t-billing-token-9876543210"


@pytest.fixture
def remotes(tmp_path: Path) -> dict[str, CodeRepo]:
    root = tmp_path / "remotes"
    return {name: CodeRepo(root, name=name) for name in ("sales", "billing")}


@pytest.fixture
def server(tmp_path: Path, remotes: dict[str, CodeRepo]) -> Iterator[GitHttpServer]:
    srv = GitHttpServer(
        tmp_path / "remotes",
        users={"sales.git": ("x-access-token", SALES_TOKEN), "billing.git": ("ci", BILLING_TOKEN)},
    ).start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A user whose own git config stores every credential it sees in a file."""
    home = tmp_path / "home"
    home.mkdir()
    store = home / "stored-credentials"
    (home / ".gitconfig").write_text(f"[credential]\n\thelper = store --file {store}\n")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    return home


def token_creds(env_var: str, user: str | None = None) -> GitCredentials:
    return GitCredentials(username=user, token={"from_env": env_var})  # type: ignore[arg-type]


def everything_under(path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file())


def test_fetch_with_the_right_token_and_nothing_is_stored(
    tmp_path: Path,
    server: GitHttpServer,
    remotes: dict[str, CodeRepo],
    home: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SALES_GIT_TOKEN", SALES_TOKEN)
    pool = MirrorPool(Layout(tmp_path / "fleet" / ".dagfleet"))
    creds = token_creds("SALES_GIT_TOKEN", "x-access-token")
    url = server.url("sales.git")
    mirror = pool.fetch("sales", url, 0.0, creds)
    assert mirror.resolve("A") == remotes["sales"].tip("A")
    new = remotes["sales"].commit({"demo/more.py": "x = 2\n"}, "more")
    remotes["sales"].push("A")
    mirror = pool.fetch("sales", url, 1e12, creds)  # a later fetch of the existing mirror
    assert mirror.resolve("A") == new
    mirror.export(new, tmp_path / "out" / new)
    assert (tmp_path / "out" / new / "demo" / "more.py").is_file()
    assert {r.user for r in server.requests if r.status == 200} == {"x-access-token"}
    assert SALES_TOKEN.encode() not in everything_under(mirror.path), "not in the mirror"
    assert mirror.git("config", "--get", "remote.origin.url").strip() == url
    assert not (home / "stored-credentials").exists(), "the user's store helper never ran"
    assert SALES_TOKEN not in repr(mirror)


@pytest.mark.parametrize("case", ["wrong token", "no credentials"])
def test_refused_credentials_are_a_clear_error_without_the_token(
    tmp_path: Path,
    server: GitHttpServer,
    home: Path,
    monkeypatch: pytest.MonkeyPatch,
    case: str,
) -> None:
    wrong = "wr0ng-token-that-must-not-leak"
    monkeypatch.setenv("SALES_GIT_TOKEN", wrong)
    creds = token_creds("SALES_GIT_TOKEN") if case == "wrong token" else None
    pool = MirrorPool(Layout(tmp_path / "fleet" / ".dagfleet"))
    with pytest.raises(GitError) as caught:
        pool.fetch("sales", server.url("sales.git"), 0.0, creds)
    message = str(caught.value)
    assert "credentials" in message and "private-remotes.md" in message
    assert wrong not in message and wrong not in caught.value.stderr
    assert SALES_TOKEN not in message
    assert not (tmp_path / "fleet" / ".dagfleet" / "git" / "sales.git").exists()
    assert not (home / "stored-credentials").exists()


def test_an_unset_token_variable_names_the_variable(
    tmp_path: Path, server: GitHttpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SALES_GIT_TOKEN", raising=False)
    pool = MirrorPool(Layout(tmp_path / "fleet" / ".dagfleet"))
    with pytest.raises(GitError, match="from_env SALES_GIT_TOKEN is not set"):
        pool.fetch("sales", server.url("sales.git"), 0.0, token_creds("SALES_GIT_TOKEN"))
    assert server.requests == [], "nothing was sent"
    mirror = pool.local("sales", server.url("sales.git"), token_creds("SALES_GIT_TOKEN"))
    assert mirror.auth is None, "the offline fallback never raises"


def test_two_repos_on_one_server_each_use_their_own_token(
    tmp_path: Path,
    server: GitHttpServer,
    remotes: dict[str, CodeRepo],
    home: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SALES_GIT_TOKEN", SALES_TOKEN)
    fleet_root = tmp_path / "fleet"
    (fleet_root / "secrets").mkdir(parents=True)
    (fleet_root / "secrets" / "billing-token").write_text(BILLING_TOKEN + "\n")
    pool = MirrorPool(Layout(fleet_root / ".dagfleet"))
    sales = pool.fetch(
        "sales", server.url("sales.git"), 0.0, token_creds("SALES_GIT_TOKEN", "x-access-token")
    )
    billing_creds = GitCredentials(
        username="ci",
        token={"from_file": "secrets/billing-token"},  # type: ignore[arg-type]
    )
    billing = pool.fetch("billing", server.url("billing.git"), 0.0, billing_creds)
    assert sales.resolve("A") == remotes["sales"].tip("A")
    assert billing.resolve("B") == remotes["billing"].tip("B")
    served = {(r.repo, r.user) for r in server.requests if r.status == 200}
    assert served == {("sales.git", "x-access-token"), ("billing.git", "ci")}
    # The other repo's token is refused: each mirror really sends its own.
    swapped = pool.local("billing", server.url("billing.git"), token_creds("SALES_GIT_TOKEN"))
    with pytest.raises(GitError, match="Authentication failed"):
        swapped.fetch()


def test_a_remote_repo_cannot_pull_a_local_repository_in_as_a_submodule(
    tmp_path: Path,
    server: GitHttpServer,
    remotes: dict[str, CodeRepo],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # e.g. another repo's private mirror on the dagfleet host, by file:// URL.
    private = remotes["billing"].remote
    sales = remotes["sales"]
    git("-c", "protocol.file.allow=always", "submodule", "add", "--quiet", private.as_uri(),
        "stolen", cwd=sales.work)  # fmt: skip
    sha = sales.commit({}, "add a file:// submodule")
    sales.push("A")
    monkeypatch.setenv("SALES_GIT_TOKEN", SALES_TOKEN)
    pool = MirrorPool(Layout(tmp_path / "fleet" / ".dagfleet"))
    creds = token_creds("SALES_GIT_TOKEN", "x-access-token")
    mirror = pool.fetch("sales", server.url("sales.git"), 0.0, creds)
    location = tmp_path / "checkouts" / "sales-A"
    with pytest.raises(GitError, match="transport 'file' not allowed"):
        mirror.export(sha, location / sha)
    assert list(location.iterdir()) == []
    # The same commit from a local remote (an operator's own repository) may.
    local = Mirror(tmp_path / "local-mirror.git", sales.url)
    local.ensure()
    local.export(sha, tmp_path / "local" / sha)
    assert (tmp_path / "local" / sha / "stolen" / "demo" / "definitions.py").is_file()


def test_the_helper_is_scoped_to_the_remote_and_holds_no_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("T", SALES_TOKEN)
    auth = resolve(token_creds("T"), "https://someone@git.example.com:8443/org/x.git", Path("/"))
    assert isinstance(auth, GitAuth)
    assert SALES_TOKEN not in " ".join(auth.config) and SALES_TOKEN not in repr(auth)
    assert auth.config[:2] == ("-c", "credential.helper="), "the user's helpers are reset first"
    assert auth.config[3].startswith("credential.https://git.example.com:8443.helper=!")
    assert auth.env == {"DAGFLEET_GIT_USERNAME": "git", "DAGFLEET_GIT_TOKEN": SALES_TOKEN}
    assert auth.scrub(f"fatal: {SALES_TOKEN} refused") == "fatal: *** refused"
    assert credential_scope("HTTP://[::1]:80/x") == "http://[::1]:80"


def test_ssh_deploy_key_command(tmp_path: Path) -> None:
    key = tmp_path / "my key"
    key.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\n")
    known = tmp_path / "known_hosts"
    known.write_text("example.com ssh-ed25519 AAAA\n")
    creds = GitCredentials(ssh_key_file="my key", ssh_known_hosts_file=str(known))
    auth = resolve(creds, "git@example.com:org/x.git", tmp_path)
    assert auth is not None and auth.config == () and auth.secrets == ()
    assert shlex.split(auth.env["GIT_SSH_COMMAND"]) == [
        "ssh",
        "-i",
        str(key),
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "BatchMode=yes",
        "-o",
        f"UserKnownHostsFile={known}",
        "-o",
        "StrictHostKeyChecking=yes",
    ]
    assert "UserKnownHostsFile" not in ssh_command(key, None)
    with pytest.raises(GitError, match=r"credentials.ssh_key_file: .*missing.* is not a readable"):
        resolve(GitCredentials(ssh_key_file="missing"), "ssh://example.com/x", tmp_path)
