"""A git-over-SSH server for tests: an unprivileged `sshd` (OpenSSH) on 127.0.0.1.

`GitSshServer` runs `/usr/sbin/sshd -D -e -f <config>` as the current user (root
included: `PermitRootLogin prohibit-password`) on a free port, with its own host key
generated at start, public-key authentication only and an `authorized_keys` file of
its own; the login user is the current user, so `ssh://USER@127.0.0.1:PORT/abs/repo.git`
serves any bare repository this user can read. `ssh_agent` runs an ssh-agent with
keys loaded. Both always stop what they started.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

SSHD_PACKAGE = "openssh-server"
CLIENT_PACKAGE = "openssh-client"
# sshd must be started by absolute path (it re-executes itself for each connection).
SSHD_CANDIDATES = ("/usr/sbin/sshd", "/usr/local/sbin/sshd", "/sbin/sshd")
# Compiled into Debian/Ubuntu's sshd: root's sshd chroots its pre-auth child here and
# refuses to start without it (the package's systemd unit creates it at boot).
PRIVSEP_DIR = Path("/run/sshd")
START_TIMEOUT = 15.0


def find_sshd() -> str | None:
    for candidate in (shutil.which("sshd"), *SSHD_CANDIDATES):
        if candidate and os.path.isabs(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def ssh_unavailable() -> str | None:
    """Why an SSH server cannot run here (naming the package to install), or None.

    As root, creates sshd's privilege separation directory when it is missing, as the
    package's own service would (it is never removed: another sshd may be using it)."""
    if find_sshd() is None:
        return f"sshd not found: install {SSHD_PACKAGE} (apt-get install {SSHD_PACKAGE})"
    for tool in ("ssh", "ssh-keygen", "ssh-agent", "ssh-add"):
        if shutil.which(tool) is None:
            return f"{tool} not found: install {CLIENT_PACKAGE} (apt-get install {CLIENT_PACKAGE})"
    if os.geteuid() == 0 and not PRIVSEP_DIR.is_dir():
        try:
            PRIVSEP_DIR.mkdir(mode=0o755, parents=True, exist_ok=True)
        except OSError as exc:
            return f"sshd run as root needs {PRIVSEP_DIR}, which cannot be created: {exc}"
    return None


def keygen(path: Path, comment: str = "dagfleet-test") -> Path:
    """A new passphrase-less ed25519 key pair at `path` (private) and `path`.pub."""
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
        check=True,
        capture_output=True,
    )
    return path


def public_key(private: Path) -> str:
    """`ssh-ed25519 AAAA...` of a key made by `keygen` (without its comment)."""
    kind, blob, *_ = Path(f"{private}.pub").read_text().split()
    return f"{kind} {blob}"


def fingerprint(private: Path) -> str:
    """`SHA256:...` of a key made by `keygen`, as sshd logs an accepted key."""
    out = subprocess.run(
        ["ssh-keygen", "-l", "-E", "sha256", "-f", f"{private}.pub"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return out.split()[1]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class GitSshServer:
    """sshd serving the current user's files over SSH; state lives under `root`."""

    root: Path
    user: str = field(default_factory=getpass.getuser)
    port: int = 0
    _proc: subprocess.Popen[bytes] | None = None

    @property
    def host_key(self) -> Path:
        return self.root / "ssh_host_ed25519_key"

    @property
    def authorized_keys(self) -> Path:
        return self.root / "authorized_keys"

    @property
    def log(self) -> Path:
        return self.root / "sshd.log"

    def url(self, repo: Path) -> str:
        """The ssh:// URL of the repository at the absolute path `repo`."""
        return f"ssh://{self.user}@127.0.0.1:{self.port}{repo.resolve()}"

    def known_hosts_line(self, host_key: Path | None = None) -> str:
        """A known_hosts entry for this server: its own host key, or `host_key`'s."""
        return f"[127.0.0.1]:{self.port} {public_key(host_key or self.host_key)}\n"

    def authorize(self, private: Path) -> None:
        with self.authorized_keys.open("a") as f:
            f.write(public_key(private) + "\n")

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def start(self) -> GitSshServer:
        sshd = find_sshd()
        assert sshd is not None, "check ssh_unavailable() first"
        self.root.mkdir(parents=True, exist_ok=True)
        keygen(self.host_key, "dagfleet-test-host")
        self.authorized_keys.touch()
        last = ""
        for _ in range(5):  # another process may take the free port before sshd binds it
            self.port = _free_port()
            config = self._write_config()
            with self.log.open("wb") as log:
                self._proc = subprocess.Popen(
                    [sshd, "-D", "-e", "-f", str(config)],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            if self._wait_listening():
                return self
            last = self.log_text()
            self.stop()
            if "Address already in use" not in last and "Bind to port" not in last:
                break
        raise RuntimeError(f"sshd did not start:\n{last}")

    def _write_config(self) -> Path:
        config = self.root / "sshd_config"
        config.write_text(
            "\n".join(
                [
                    f"Port {self.port}",
                    "ListenAddress 127.0.0.1",
                    f"HostKey {self.host_key}",
                    f"AuthorizedKeysFile {self.authorized_keys}",
                    "PubkeyAuthentication yes",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "StrictModes no",
                    "UsePAM no",
                    "PermitRootLogin prohibit-password",
                    f"AllowUsers {self.user}",
                    f"PidFile {self.root / 'sshd.pid'}",
                    "LogLevel VERBOSE",
                    "",
                ]
            )
        )
        return config

    def _wait_listening(self) -> bool:
        assert self._proc is not None
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                return False
            if f"Server listening on 127.0.0.1 port {self.port}" in self.log_text():
                return True
            time.sleep(0.05)
        return False

    def stop(self) -> None:
        """Stop sshd and anything left in its process group (idempotent)."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


@contextlib.contextmanager
def ssh_agent(sock_dir: Path, *keys: Path) -> Iterator[str]:
    """An ssh-agent holding `keys`; yields its SSH_AUTH_SOCK path. Always stopped."""
    sock_dir.mkdir(parents=True, exist_ok=True)
    sock = sock_dir / "agent.sock"
    proc = subprocess.Popen(
        ["ssh-agent", "-D", "-a", str(sock)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not sock.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("ssh-agent did not start")
            time.sleep(0.05)
        env = {**os.environ, "SSH_AUTH_SOCK": str(sock)}
        for key in keys:
            subprocess.run(["ssh-add", "-q", str(key)], env=env, check=True, capture_output=True)
        yield str(sock)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
