"""The one error of dagfleet.gitops (re-exported by dagfleet.gitops.git)."""

from __future__ import annotations


class GitError(Exception):
    """A git command failed; `stderr` holds git's own words for the user."""

    def __init__(self, message: str, stderr: str = "") -> None:
        super().__init__(message + (f": {stderr.strip()}" if stderr.strip() else ""))
        self.message = message  # what failed, without git's words
        self.stderr = stderr
