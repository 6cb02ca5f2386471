"""Look into a remote before it is registered: which code locations its tree holds.

`dagfleet repo add` calls this so that a monorepo is registered with all its
locations (a shallow clone of one branch into a temporary directory, nothing
kept). Uses the same safe git invocation as the mirrors.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from dagfleet.discovery import FoundLocation, discover_locations
from dagfleet.gitops.git import run_git


def remote_locations(url: str, branch: str | None = None) -> list[FoundLocation]:
    """The monorepo locations at `branch` (the remote's default branch when None);
    [] for a single-location repo. Raises GitError or DiscoveryError."""
    with tempfile.TemporaryDirectory(prefix="dagfleet-probe-") as tmp:
        tree = Path(tmp) / "tree"
        args = ["clone", "--quiet", "--depth", "1", "--no-tags"]
        if branch:
            args += ["--branch", branch]
        run_git(*args, "--", url, str(tree))
        return discover_locations(tree)
