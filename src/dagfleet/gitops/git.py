"""Thin, safe wrappers over the git CLI for mirrors, refs and pushes."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from dagfleet.spec.names import check_git_ref, check_git_url

# Remote helpers such as ext:: can run arbitrary commands; only plain transports pass.
_SAFE = [
    "-c",
    "protocol.ext.allow=never",
    "-c",
    "protocol.allow=user",
    "-c",
    "core.hooksPath=/dev/null",
]
_SHA = re.compile(r"^[0-9a-f]{40}$")
FETCH_TIMEOUT = 120.0


class GitError(Exception):
    """A git command failed; `stderr` holds git's own words for the user."""

    def __init__(self, message: str, stderr: str = "") -> None:
        super().__init__(message + (f": {stderr.strip()}" if stderr.strip() else ""))
        self.stderr = stderr


@dataclass(frozen=True)
class Mirror:
    """A bare mirror of one remote, shared by every environment of a repo."""

    path: Path
    url: str

    def git(self, *args: str, timeout: float = FETCH_TIMEOUT, check: bool = True) -> str:
        return run_git("--git-dir", str(self.path), *args, timeout=timeout, check=check)

    def ensure(self) -> bool:
        """Create the mirror if missing; True when it was created (a full clone)."""
        error = check_git_url(self.url)
        if error:
            raise GitError(error)
        if (self.path / "HEAD").exists():
            if self.git("config", "--get", "remote.origin.url", check=False).strip() != self.url:
                self.git("remote", "set-url", "origin", _url_arg(self.url))
            return False
        tmp = self.path.with_name(self.path.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.parent.mkdir(parents=True, exist_ok=True)
        run_git("clone", "--mirror", "--quiet", "--", _url_arg(self.url), str(tmp))
        os.replace(tmp, self.path)
        return True

    def fetch(self) -> None:
        self.git("fetch", "--prune", "--quiet", "--force", "origin")

    def resolve(self, ref: str) -> str | None:
        """The commit a branch, tag or SHA names in the mirror, or None if it is gone."""
        if _SHA.match(ref):
            out = self.git("cat-file", "-t", ref, check=False).strip()
            return ref if out == "commit" else None
        error = check_git_ref(ref)
        if error:
            raise GitError(error)
        for name in (f"refs/heads/{ref}", f"refs/tags/{ref}"):
            out = self.git("rev-parse", "--verify", "--quiet", f"{name}^{{commit}}", check=False)
            if out.strip():
                return out.strip()
        if re.match(r"^[0-9a-f]{7,39}$", ref):
            out = self.git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", check=False)
            if out.strip():
                return out.strip()
        return None

    def export(self, sha: str, dest: Path) -> None:
        """Write the tree of `sha` to `dest` (created atomically via a temp dir)."""
        if dest.exists():
            return
        tmp = dest.with_name(dest.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        archive = subprocess.Popen(
            ["git", *_SAFE, "--git-dir", str(self.path), "archive", "--format=tar", sha],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        untar = subprocess.run(
            ["tar", "-x", "-C", str(tmp)], stdin=archive.stdout, capture_output=True, check=False
        )
        assert archive.stdout is not None
        archive.stdout.close()
        err = archive.stderr.read().decode() if archive.stderr else ""
        if archive.wait() != 0 or untar.returncode != 0:
            shutil.rmtree(tmp, ignore_errors=True)
            raise GitError(f"cannot export {sha}", err + untar.stderr.decode())
        os.replace(tmp, dest)

    def is_ancestor(self, older: str, newer: str) -> bool:
        args = ("merge-base", "--is-ancestor", older, newer)
        result = subprocess.run(
            ["git", *_SAFE, "--git-dir", str(self.path), *args], capture_output=True, check=False
        )
        return result.returncode == 0


def _url_arg(url: str) -> str:
    return url


def git_env() -> dict[str, str]:
    env = dict(os.environ)
    # Never block on a password prompt: a sync loop has no terminal.
    env["GIT_TERMINAL_PROMPT"] = "0"
    env.setdefault("GIT_SSH_COMMAND", "ssh -o BatchMode=yes")
    env["GIT_ALLOW_PROTOCOL"] = "file:git:http:https:ssh"
    return env


def run_git(
    *args: str, cwd: Path | None = None, timeout: float = FETCH_TIMEOUT, check: bool = True
) -> str:
    try:
        result = subprocess.run(
            ["git", *_SAFE, *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=git_env(),
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise GitError(f"git {args[0]} timed out after {timeout:.0f}s") from exc
    if check and result.returncode != 0:
        shown = " ".join(a for a in args if not a.startswith("/"))[:80]
        raise GitError(f"git {shown} failed", result.stderr)
    return result.stdout
