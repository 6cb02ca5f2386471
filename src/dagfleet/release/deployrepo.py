"""The deploy repository: a fresh working clone per attempt, one commit, a push, retries.

`update(change)` clones the deploy branch (or starts it when the branch does not
exist yet), lets `change` edit the files under the deploy path, and commits and
pushes when anything changed. `credentials` (an HTTPS token or an SSH deploy key, as a
repo file's `credentials:` names them, docs/private-remotes.md) are read at each git
command that talks to the remote and reach git through its environment only. When the
push is refused because another release pushed first, it starts again from the new
tip: `change` runs again on top of the other release's commit, so neither change is
lost. Nothing is committed when `change` leaves the files as they were.
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from dagfleet.gitops.auth import GitAuth, resolve
from dagfleet.gitops.git import GitError, run_git
from dagfleet.spec.credentials import GitCredentials

_IDENTITY = ["-c", "user.name=dagfleet", "-c", "user.email=dagfleet@localhost"]
PUSH_ATTEMPTS = 8
# The change: edits files under the path it is given, returns the commit message
# (None: nothing to commit).
Change = Callable[[Path], str | None]


def _has_identity() -> bool:
    result = subprocess.run(["git", "config", "user.email"], capture_output=True, check=False)
    return result.returncode == 0 and bool(result.stdout.strip())


@dataclass(frozen=True)
class DeployRepo:
    url: str
    branch: str = "main"
    path: str = ""
    credentials: GitCredentials | None = field(default=None, repr=False, compare=False)

    def _auth(self) -> GitAuth | None:
        """The credentials, read now (a rotated token or key is used by the next command)."""
        return resolve(self.credentials, self.url, Path.cwd())

    def read(self, rel: str) -> dict[str, str]:
        """Files under `<path>/<rel>` (a file or a directory) at the branch tip, by path
        relative to the deploy path; empty when the branch or the files do not exist."""
        with tempfile.TemporaryDirectory(prefix="dagfleet-deploy-") as tmp:
            work = self._clone(Path(tmp) / "work")
            root = work / self.path
            target = root / rel
            if target.is_file():
                return {rel: target.read_text()}
            if target.is_dir():
                return {
                    str(p.relative_to(root)): p.read_text()
                    for p in sorted(target.rglob("*"))
                    if p.is_file()
                }
            return {}

    def update(self, change: Change) -> str | None:
        """Apply `change` on the branch tip, commit and push; the pushed commit, or None
        when nothing changed. Retries from the new tip when another push won the race."""
        last: GitError | None = None
        for _attempt in range(PUSH_ATTEMPTS):
            with tempfile.TemporaryDirectory(prefix="dagfleet-deploy-") as tmp:
                work = self._clone(Path(tmp) / "work")
                root = work / self.path
                root.mkdir(parents=True, exist_ok=True)
                message = change(root)
                run_git("add", "--all", "--", self.path or ".", cwd=work)
                staged = run_git("diff", "--cached", "--name-only", cwd=work).strip()
                if message is None or not staged:
                    return None
                identity = [] if _has_identity() else _IDENTITY
                run_git(*identity, "commit", "--quiet", "-m", message, cwd=work)
                try:
                    run_git(
                        "push", "--quiet", "origin", f"HEAD:refs/heads/{self.branch}",
                        cwd=work, auth=self._auth(),
                    )  # fmt: skip
                except GitError as exc:
                    if not _lost_race(exc):
                        raise
                    last = exc
                    continue
                return run_git("rev-parse", "HEAD", cwd=work).strip()
        raise GitError(
            f"pushing to {self.branch} of the deploy repo failed {PUSH_ATTEMPTS} times: "
            "other releases kept pushing first",
            last.stderr if last is not None else "",
        )

    def _clone(self, work: Path) -> Path:
        auth = self._auth()
        heads = run_git(
            "ls-remote", "--heads", "--", self.url, f"refs/heads/{self.branch}", auth=auth
        )
        if heads.strip():
            run_git(
                "clone", "--quiet", "--single-branch", "--branch", self.branch, "--",
                self.url, str(work), auth=auth,
            )  # fmt: skip
        else:  # a new deploy branch (or an empty repository): start it
            run_git("init", "--quiet", "--initial-branch", self.branch, str(work))
            run_git("remote", "add", "origin", self.url, cwd=work)
        return work


def _lost_race(exc: GitError) -> bool:
    text = f"{exc} {getattr(exc, 'stderr', '')}"
    return any(
        s in text
        for s in ("rejected", "non-fast-forward", "fetch first", "cannot lock ref", "stale info")
    )
