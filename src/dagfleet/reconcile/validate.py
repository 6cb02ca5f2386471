"""`dagfleet validate`: load every location's definitions, publish nothing.

Each location goes through the same steps as a publish (fetch, then
`reconcile.pipeline`: checkout, discover, install, build, environment; then a
code server loading the definitions in a separate process), and the server is
stopped right after its load check. This is what CI runs.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from dagfleet.gitops.git import GitError
from dagfleet.layout import Layout
from dagfleet.reconcile.context import MirrorPool
from dagfleet.reconcile.pipeline import Pipeline, StepFailed, lead_with_error
from dagfleet.runtime import codeserver
from dagfleet.runtime.instance import instance_packages
from dagfleet.spec import Fleet, LocationSpec
from dagfleet.status import Reason
from dagfleet.venvs.builder import EnvBuilder


@dataclass(frozen=True)
class Validation:
    location: str
    ok: bool
    commit: str | None
    reason: str
    message: str
    seconds: float


def validate_location(fleet: Fleet, layout: Layout, loc: LocationSpec) -> Validation:
    started = time.monotonic()
    repo = fleet.repos[loc.repo]

    def result(ok: bool, commit: str | None, reason: str, message: str) -> Validation:
        return Validation(
            loc.name, ok, commit, reason, message, round(time.monotonic() - started, 2)
        )

    try:
        mirror = MirrorPool(layout).fetch(repo.name, repo.git_url, 0.0, repo.credentials)
        sha = mirror.resolve(loc.pin or loc.ref)
    except GitError as exc:
        return result(False, None, Reason.GIT_FETCH_FAILED, str(exc))
    if sha is None:
        return result(False, None, Reason.REF_NOT_FOUND, f"{loc.pin or loc.ref!r} not found")
    pipeline = Pipeline(
        fleet, layout, EnvBuilder(layout.venvs, extras=instance_packages(fleet, os.environ))
    )
    try:
        candidate = pipeline.prepare(mirror, loc, sha)
    except StepFailed as exc:
        return result(False, sha, exc.reason, exc.message)
    assert candidate.env is not None and candidate.target is not None
    with tempfile.TemporaryDirectory(prefix="dagfleet-validate-") as run_dir:
        log = Path(run_dir) / "server.log"
        server = codeserver.start(
            location=loc.name,
            sha=sha,
            checkout=candidate.tree,
            env=candidate.env,
            target=candidate.target,
            run_dir=Path(run_dir),
            environ=dict(candidate.environ),
            log=log,
        )
        try:
            codeserver.wait_loaded(server, log)
        except codeserver.LoadFailed as exc:
            return result(False, sha, Reason.DEFINITIONS_INVALID, lead_with_error(exc.detail))
        finally:
            server.child.stop(5.0)
            with contextlib.suppress(FileNotFoundError):
                server.socket.unlink()
    version = candidate.env.dagster_version()
    return result(True, sha, "DefinitionsLoaded", f"dagster {version}")


def validate(
    fleet: Fleet, layout: Layout, repo: str | None = None, env: str | None = None
) -> list[Validation]:
    out = []
    for loc in fleet.locations():
        if loc.playground or (repo and loc.repo != repo) or (env and loc.env != env):
            continue
        out.append(validate_location(fleet, layout, loc))
    return out
