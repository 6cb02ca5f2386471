"""Private remotes over SSH: a repo's deploy key and known_hosts against a real `sshd`.

The server (tests.support.gitssh) runs as the current user on a free port of
127.0.0.1 with a host key made for the test; repositories are bare repos served at
`ssh://USER@127.0.0.1:PORT/abs/path.git`. Only the deploy key named by the repo's
`credentials` is ever offered (IdentitiesOnly), and the server must match the given
known_hosts (StrictHostKeyChecking).
"""

from __future__ import annotations

import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest

from dagfleet.gitops.auth import GitAuth, ssh_command
from dagfleet.gitops.git import GitError, run_git
from dagfleet.layout import Layout
from dagfleet.reconcile.context import MirrorPool
from dagfleet.spec.credentials import GitCredentials
from tests.support.gitrepo import CodeRepo
from tests.support.gitssh import GitSshServer, fingerprint, keygen, ssh_agent, ssh_unavailable

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def no_agent(monkeypatch: pytest.MonkeyPatch) -> None:
    """The developer's own ssh-agent plays no part (the IdentitiesOnly test sets one)."""
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[GitSshServer]:
    reason = ssh_unavailable()
    if reason:
        pytest.skip(reason)
    server = GitSshServer(tmp_path / "sshd")
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture
def remote(tmp_path: Path) -> CodeRepo:
    return CodeRepo(tmp_path / "remotes", name="sales")


@pytest.fixture
def fleet_root(tmp_path: Path) -> Path:
    root = tmp_path / "fleet"
    root.mkdir()
    return root


def pool_for(fleet_root: Path) -> MirrorPool:
    return MirrorPool(Layout(fleet_root / ".dagfleet"))


def write_known_hosts(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def everything_under(path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file())


def assert_no_key_material(error: GitError, private: Path) -> None:
    secret = private.read_text()
    body = [line for line in secret.splitlines() if line and not line.startswith("-----")]
    for text in (str(error), error.stderr):
        assert secret not in text
        assert not any(line in text for line in body), "no line of the private key"


# Secrets directories whose names ssh would misread unquoted: a space splits a
# UserKnownHostsFile value into two files, % starts an ssh token.
@pytest.mark.parametrize("secrets_dir", ["secrets", "deploy keys", '50% "odd" keys'])
def test_a_deploy_key_mirrors_fetches_and_pushes_over_ssh(
    sshd: GitSshServer, remote: CodeRepo, fleet_root: Path, tmp_path: Path, secrets_dir: str
) -> None:
    key = keygen(fleet_root / secrets_dir / "sales deploy key")
    sshd.authorize(key)
    write_known_hosts(fleet_root / secrets_dir / "known hosts", sshd.known_hosts_line())
    creds = GitCredentials(
        ssh_key_file=f"{secrets_dir}/sales deploy key",  # relative to the fleet root
        ssh_known_hosts_file=f"{secrets_dir}/known hosts",
    )
    url = sshd.url(remote.remote)
    assert url.startswith(f"ssh://{sshd.user}@127.0.0.1:{sshd.port}/")
    pool = pool_for(fleet_root)

    mirror = pool.fetch("sales", url, 0.0, creds)  # a first fetch: clone --mirror
    assert mirror.resolve("A") == remote.tip("A")
    assert mirror.resolve("B") == remote.tip("B")
    assert f"Accepted publickey for {sshd.user}" in sshd.log_text()
    assert fingerprint(key) in sshd.log_text(), "the deploy key is the one accepted"

    # A commit pushed over SSH with the same credentials (Mirror.run, as promotions push)...
    new = remote.commit({"demo/more.py": "x = 2\n"}, "more")
    mirror.run("push", "--quiet", url, "A:A", cwd=remote.work)
    assert remote.tip("A") == new
    assert mirror.resolve("A") != new, "not yet fetched"
    # ...is seen by the next fetch of the existing mirror.
    mirror = pool.fetch("sales", url, 1e12, creds)
    assert mirror.resolve("A") == new
    mirror.export(new, tmp_path / "out" / new)
    assert (tmp_path / "out" / new / "demo" / "more.py").read_text() == "x = 2\n"

    assert mirror.git("config", "--get", "remote.origin.url").strip() == url
    assert key.read_bytes() not in everything_under(mirror.path), "the key is not in the mirror"
    assert mirror.auth is not None and "IdentitiesOnly=yes" in mirror.auth.env["GIT_SSH_COMMAND"]


def test_an_unauthorized_key_is_a_clear_error_without_the_key(
    sshd: GitSshServer, remote: CodeRepo, fleet_root: Path
) -> None:
    sshd.authorize(keygen(fleet_root / "secrets" / "authorized"))
    other = keygen(fleet_root / "secrets" / "not authorized")
    write_known_hosts(fleet_root / "secrets" / "known_hosts", sshd.known_hosts_line())
    creds = GitCredentials(
        ssh_key_file="secrets/not authorized", ssh_known_hosts_file="secrets/known_hosts"
    )
    with pytest.raises(GitError) as caught:
        pool_for(fleet_root).fetch("sales", sshd.url(remote.remote), 0.0, creds)
    message = str(caught.value)
    assert "Permission denied (publickey)" in message
    assert "credentials" in message and "private-remotes.md" in message, "the hint"
    assert_no_key_material(caught.value, other)
    assert "Accepted publickey" not in sshd.log_text()
    assert not (fleet_root / ".dagfleet" / "git" / "sales.git").exists()


@pytest.mark.parametrize("case", ["another host key", "no entry for this server"])
def test_a_server_not_in_known_hosts_is_refused(
    sshd: GitSshServer, remote: CodeRepo, fleet_root: Path, tmp_path: Path, case: str
) -> None:
    key = keygen(fleet_root / "secrets" / "deploy")
    sshd.authorize(key)
    impostor = keygen(tmp_path / "other-host" / "ssh_host_ed25519_key")
    if case == "another host key":  # the right name and port, the wrong key
        line = sshd.known_hosts_line(host_key=impostor)
    else:  # the server's own key, but listed for another host
        line = f"git.example.com {sshd.known_hosts_line().split(' ', 1)[1]}"
    write_known_hosts(fleet_root / "secrets" / "known_hosts", line)
    creds = GitCredentials(
        ssh_key_file="secrets/deploy", ssh_known_hosts_file="secrets/known_hosts"
    )
    with pytest.raises(GitError) as caught:
        pool_for(fleet_root).fetch("sales", sshd.url(remote.remote), 0.0, creds)
    message = str(caught.value)
    assert "Host key verification failed" in message
    if case == "another host key":
        assert "REMOTE HOST IDENTIFICATION HAS CHANGED" in message
    else:
        assert "No ED25519 host key is known for [127.0.0.1]" in message
    assert "private-remotes.md" in message
    assert_no_key_material(caught.value, key)
    assert "Accepted publickey" not in sshd.log_text(), "no key was offered to that server"
    assert not (fleet_root / ".dagfleet" / "git" / "sales.git").exists()


def test_the_users_own_keys_are_never_offered(
    sshd: GitSshServer,
    remote: CodeRepo,
    fleet_root: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """IdentitiesOnly: a key the server accepts, held by the user's ssh-agent and at
    ~/.ssh/id_ed25519, is not used when the repo's deploy key is refused.

    OpenSSH finds ~ through the passwd entry, not $HOME, so the agent is what really
    offers the user's key here; the $HOME copy covers an ssh that reads $HOME."""
    home = tmp_path / "home"
    own = keygen(home / ".ssh" / "id_ed25519", "the user's own key")
    sshd.authorize(own)
    monkeypatch.setenv("HOME", str(home))
    deploy = keygen(fleet_root / "secrets" / "deploy", "not authorized")
    known = write_known_hosts(fleet_root / "secrets" / "known_hosts", sshd.known_hosts_line())
    creds = GitCredentials(
        ssh_key_file="secrets/deploy", ssh_known_hosts_file="secrets/known_hosts"
    )
    url = sshd.url(remote.remote)

    with ssh_agent(tmp_path / "agent", own) as sock:
        monkeypatch.setenv("SSH_AUTH_SOCK", sock)
        with pytest.raises(GitError, match=r"Permission denied \(publickey\)") as caught:
            pool_for(fleet_root).fetch("sales", url, 0.0, creds)
        assert_no_key_material(caught.value, deploy)
        assert "Accepted publickey" not in sshd.log_text()
        assert not (fleet_root / ".dagfleet" / "git" / "sales.git").exists()

        # The control: the same command without IdentitiesOnly gets in with the agent's key.
        loose = shlex.join(
            ["ssh", "-i", str(deploy), "-o", "BatchMode=yes",
             "-o", f"UserKnownHostsFile={known}", "-o", "StrictHostKeyChecking=yes"]
        )  # fmt: skip
        refs = run_git("ls-remote", url, auth=GitAuth(env={"GIT_SSH_COMMAND": loose}))
        assert remote.tip("A") in refs
        assert fingerprint(own) in sshd.log_text()


def test_the_server_stops_with_its_fixture(tmp_path: Path) -> None:
    reason = ssh_unavailable()
    if reason:
        pytest.skip(reason)
    server = GitSshServer(tmp_path / "sshd").start()
    proc = server._proc
    assert proc is not None and proc.poll() is None
    server.stop()
    assert proc.poll() is not None
    server.stop()  # idempotent
    assert not (tmp_path / "sshd" / "sshd.pid").exists()


def test_ssh_command_quotes_paths_ssh_would_split_or_expand() -> None:
    argv = shlex.split(ssh_command(Path('/s/50% "x"/k'), Path("/s/known hosts")))
    assert argv[1:3] == ["-o", 'IdentityFile="/s/50%% \\"x\\"/k"']
    assert 'UserKnownHostsFile="/s/known hosts"' in argv
    plain = shlex.split(ssh_command(Path("/s/my key"), Path("/s/known_hosts")))
    assert plain[1:3] == ["-i", "/s/my key"], "-i takes a space as is"
    assert "UserKnownHostsFile=/s/known_hosts" in plain
