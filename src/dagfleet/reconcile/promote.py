"""Promotion A -> B: move B's branch to the commit live and Ready in A, and push it.

Promotes what A *serves*, not A's newest tip: a commit that never loaded in A
is never promoted. Fast-forward by default; `merge=True` records a merge
commit as seed 000's `git checkout B && git merge A` does.
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from dagfleet.control import ControlError, PromoteOutcome
from dagfleet.gitops.git import GitError, Mirror, run_git
from dagfleet.spec import Fleet, RepoSpec


@dataclass(frozen=True)
class Serving:
    """What one location serves right now: its live commit and whether it is Ready."""

    sha: str | None
    ready: bool


# Fetches the repo's mirror (the runtime's shared one) so promotion sees the remote now.
FetchMirror = Callable[[RepoSpec], Mirror]

_IDENTITY = ["-c", "user.name=dagfleet", "-c", "user.email=dagfleet@localhost"]


def _has_identity() -> bool:
    result = subprocess.run(["git", "config", "user.email"], capture_output=True, check=False)
    return result.returncode == 0 and bool(result.stdout.strip())


def promote(
    fleet: Fleet,
    serving: Mapping[str, Serving],
    fetch: FetchMirror,
    repo_name: str,
    source: str,
    target: str,
    merge: bool,
) -> PromoteOutcome:
    """Push the commit `source` serves to `target`'s branch; the caller then syncs target.

    `serving` maps location names to what they serve (locations without a loop are absent).
    """
    repo = fleet.repos.get(repo_name)
    if repo is None:
        raise ControlError(f"unknown repo {repo_name!r}", 404)
    for env in (source, target):
        try:
            fleet.environment(env)
        except KeyError:
            raise ControlError(f"unknown environment {env!r}", 404) from None
        if not repo.runs_in(env):
            raise ControlError(f"repo {repo_name!r} does not run in environment {env!r}", 409)
    if source == target:
        raise ControlError("source and target environments are the same", 422)
    if target in repo.pins:
        raise ControlError(
            f"{repo_name}-{target} is pinned to {repo.pins[target]!r}: remove the pin to promote",
            409,
        )
    # Every location of the repo in `source` (several in a monorepo) must serve the
    # same Ready commit: that commit is what is promoted.
    shas: set[str] = set()
    for name in repo.location_names(source):
        now = serving.get(name)
        if now is None or now.sha is None or not now.ready:
            raise ControlError(
                f"{name} has no live, Ready commit to promote: "
                "check `dagfleet status` and fix it first",
                409,
            )
        shas.add(now.sha)
    if len(shas) != 1:
        raise ControlError(
            f"the locations of {repo_name} in {source} serve different commits "
            f"({', '.join(sorted(s[:12] for s in shas))}): wait until they agree",
            409,
        )
    (sha,) = shas
    branch = repo.ref_for(fleet.environment(target))
    mirror = fetch(repo)
    previous = mirror.resolve(branch)
    if previous == sha or (previous is not None and mirror.is_ancestor(sha, previous)):
        raise ControlError(f"{branch} already contains {sha[:12]}; nothing to promote", 409)
    merged = False
    try:
        if previous is None or mirror.is_ancestor(previous, sha):
            # Push by URL: the mirror's `origin` is a mirror remote that refuses refspecs.
            mirror.git("push", "--quiet", repo.git_url, f"{sha}:refs/heads/{branch}")
        elif not merge:
            raise ControlError(
                f"{branch} has diverged from {repo_name}-{source}'s live commit {sha[:12]}: "
                "merge it by hand, or run promote with --merge to create a merge commit",
                409,
            )
        else:
            _push_merge(mirror, repo.git_url, branch, sha, source, target)
            merged = True
    except GitError as exc:
        raise ControlError(f"pushing {branch} failed: {exc}", 502) from exc
    return PromoteOutcome(repo_name, source, target, sha, branch, merged, previous)


def _push_merge(mirror: Mirror, url: str, branch: str, sha: str, source: str, target: str) -> None:
    with tempfile.TemporaryDirectory(prefix="dagfleet-promote-") as tmp:
        work = Path(tmp) / "work"
        run_git("clone", "--quiet", "--branch", branch, "--", str(mirror.path), str(work))
        identity = [] if _has_identity() else _IDENTITY
        message = f"Promote {source} -> {target}: merge {sha[:12]}"
        try:
            run_git(*identity, "merge", "--no-ff", "--quiet", "-m", message, sha, cwd=work)
        except GitError as exc:
            raise ControlError(
                f"merging {sha[:12]} into {branch} conflicts; resolve it by hand: {exc}", 409
            ) from exc
        mirror.run("push", "--quiet", url, f"HEAD:refs/heads/{branch}", cwd=work)
    mirror.fetch()
