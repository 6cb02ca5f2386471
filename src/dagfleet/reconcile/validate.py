"""`dagfleet validate`: load every location's definitions, publish nothing.

Each location goes through the same steps as a publish (fetch, checkout,
environment, a code server loading the definitions in a separate process), and
the server is stopped right after its load check. This is what CI runs.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from dagfleet.envs.builder import EnvBuilder, InstallError, fleet_extras
from dagfleet.gitops.git import GitError
from dagfleet.layout import Layout
from dagfleet.reconcile.context import MirrorPool
from dagfleet.runtime import codeserver
from dagfleet.runtime.discovery import DiscoveryError, discover_target
from dagfleet.runtime.environ import SecretMissing, location_environ
from dagfleet.spec import Fleet, LocationSpec
from dagfleet.status import Reason


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
        mirror = MirrorPool(layout).fetch(repo.name, repo.git_url, since=0.0)
        sha = mirror.resolve(loc.pin or loc.ref)
    except GitError as exc:
        return result(False, None, Reason.GIT_FETCH_FAILED, str(exc))
    if sha is None:
        return result(False, None, Reason.REF_NOT_FOUND, f"{loc.pin or loc.ref!r} not found")
    checkout = layout.checkouts(loc.name) / sha
    try:
        mirror.export(sha, checkout)
        target = repo.code_target or discover_target(checkout, repo.working_directory)
        env, _ = EnvBuilder(layout.venvs, extras=fleet_extras(fleet)).ensure(
            checkout / target.working_directory
        )
        environ = location_environ(fleet, loc, sha, layout.dagster_home, str(layout.root))
    except GitError as exc:
        return result(False, sha, Reason.GIT_FETCH_FAILED, str(exc))
    except DiscoveryError as exc:
        return result(False, sha, Reason.CODE_TARGET_NOT_FOUND, str(exc))
    except InstallError as exc:
        return result(False, sha, Reason.DEPENDENCY_INSTALL_FAILED, f"{exc}\n{exc.tail}")
    except SecretMissing as exc:
        return result(False, sha, Reason.SECRET_NOT_FOUND, str(exc))
    with tempfile.TemporaryDirectory(prefix="dagfleet-validate-") as run_dir:
        log = Path(run_dir) / "server.log"
        server = codeserver.start(
            location=loc.name,
            sha=sha,
            checkout=checkout,
            env=env,
            target=target,
            run_dir=Path(run_dir),
            environ=environ,
            log=log,
        )
        try:
            codeserver.wait_loaded(server, log)
        except codeserver.LoadFailed as exc:
            return result(False, sha, Reason.DEFINITIONS_INVALID, exc.detail)
        finally:
            server.child.stop(5.0)
            with contextlib.suppress(FileNotFoundError):
                server.socket.unlink()
    return result(True, sha, "DefinitionsLoaded", f"dagster {env.dagster_version()}")


def validate(
    fleet: Fleet, layout: Layout, repo: str | None = None, env: str | None = None
) -> list[Validation]:
    out = []
    for loc in fleet.locations():
        if loc.playground or (repo and loc.repo != repo) or (env and loc.env != env):
            continue
        out.append(validate_location(fleet, layout, loc))
    return out
