"""The steps that turn a commit into something a code server can load.

    checkout -> discover -> install -> build -> environment

Each step takes a `Candidate` and returns it with one more thing known, or
raises `StepFailed` saying whether the failure is transient (the network, the
index, a timeout: retry the same commit) or the commit's own (stall until a new
commit or a forced sync). The location loop runs them before its load check
and publish; `dagfleet validate` runs the same steps, then the same load check.

Where the steps write:
- checkout: `checkouts/<location>/<sha>/`, the commit's tree (`Mirror.export`).
- install: `venvs/<hash>/`, shared by every commit with those dependencies, and,
  for a packaged project, the project's own package built for this commit into
  `<tree>/<working dir>/.dagfleet/site` (on PYTHONPATH).
- build: with build steps or a packaged project, the prepared tree is made once
  per (commit, dependency hash, steps) in `builds/<repo>/<key>/` and copied to
  the location's tree, so a second environment on that commit or a restart does
  not build again. Copies, not links: runs write into their tree (dbt's target/).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TypeVar

from dagfleet.discovery import DiscoveryError, discover_target
from dagfleet.faults import checkpoint
from dagfleet.fsutil import atomic_write, exclusive
from dagfleet.gitops.git import GitError, Mirror
from dagfleet.layout import Layout
from dagfleet.runtime.environ import SecretMissing, location_environ
from dagfleet.runtime.processes import output_since_start, spawn
from dagfleet.spec import CodeTarget, Fleet, LocationSpec
from dagfleet.spec.models import BuildStep, RepoSpec
from dagfleet.spec.references import UnknownReference
from dagfleet.status import Reason
from dagfleet.venvs.builder import (
    EnvBuilder,
    InstallCancelled,
    InstallError,
    PythonEnv,
    Resolution,
)
from dagfleet.venvs.dagster_range import DagsterVersionUnsupported

T = TypeVar("T")
KEEP_BUILDS = 6  # prepared trees kept per repo (newest first)
SITE = Path(".dagfleet") / "site"
PREPARED = Path(".dagfleet") / "prepared"


class StepFailed(Exception):
    """A step failed; `reason` is the condition reason. `transient` failures are
    retried on the same commit; the others wait for a new commit or a forced sync."""

    def __init__(self, reason: Reason, message: str, transient: bool = False) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.transient = transient


@contextlib.contextmanager
def timed(timings: dict[str, float], step: str) -> Iterator[None]:
    """Record how long `step` took, whether it succeeded or raised."""
    started = time.monotonic()
    try:
        yield
    finally:
        timings[step] = round(timings.get(step, 0.0) + time.monotonic() - started, 3)


class StepCancelled(Exception):
    """dagfleet is stopping: the step was abandoned, nothing is known about the commit."""


@dataclass(frozen=True)
class Candidate:
    """One commit on its way to a location; each step fills in one more field."""

    location: LocationSpec
    sha: str
    tree: Path
    target: CodeTarget | None = None
    env: PythonEnv | None = None
    pythonpath: tuple[str, ...] = ()
    environ: Mapping[str, str] = field(default_factory=dict)

    @property
    def project(self) -> Path:
        assert self.target is not None, "discover first"
        return self.tree / self.target.working_directory


_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(?:Error|Exception|Exit)\b")
# Dagster's wrappers say *that* loading failed; their cause says why.
_WRAPPERS = ("DagsterUserCodeLoadError", "DagsterUserCodeProcessError")
_FRAME_OR_CHAIN = ("  File ", "Stack Trace", "Traceback", "The above exception", "During handling")


def lead_with_error(text: str, limit: int = 4000) -> str:
    """A failure message that leads with the lines saying what is wrong.

    The error is the `Type: message` line of the root cause (Python prints it
    first in a chained traceback, Dagster's serialized errors print it last;
    Dagster's "error occurred during loading" wrappers are skipped), with the
    lines of its message. Then as much of the rest as fits, innermost frames
    first, cut at line ends, never in the middle of a path.
    """
    lines = [line for line in text.strip().splitlines() if line.strip()]
    if not lines:
        return ""
    found = [i for i, line in enumerate(lines) if _EXCEPTION_LINE.match(line)]
    causes = [i for i in found if not any(w in lines[i].split(":")[0] for w in _WRAPPERS)]
    chained = any(line.startswith("The above exception was caused") for line in lines)
    if causes:
        at = causes[-1] if chained else causes[0]
    elif found:
        at = found[-1]
    else:
        at = None
    if at is None:
        head: list[str] = []
        rest = lines
    else:
        end = at + 1
        while end < len(lines) and end - at < 12 and not lines[end].startswith(_FRAME_OR_CHAIN):
            end += 1
        head = lines[at:end]
        rest = lines[:at] + lines[end:]
    out = "\n".join(head)[:limit]
    kept: list[str] = []
    budget = limit - len(out) - 1
    for line in reversed(rest):  # the innermost frames are the useful ones
        if len(line) + 1 > budget:
            kept.append("...")
            break
        kept.append(line)
        budget -= len(line) + 1
    trace = "\n".join(reversed(kept))
    return f"{out}\n{trace}".strip() if out else trace


@dataclass
class Pipeline:
    fleet: Fleet
    layout: Layout
    builder: EnvBuilder
    install_slots: threading.Semaphore = field(default_factory=lambda: threading.Semaphore(2))
    cancel: threading.Event = field(default_factory=threading.Event)

    def repo(self, c: Candidate) -> RepoSpec:
        return self.fleet.repos[c.location.repo]

    # ---- the steps --------------------------------------------------------------------
    def checkout(self, mirror: Mirror, loc: LocationSpec, sha: str) -> Candidate:
        tree = self.layout.checkouts(loc.name) / sha
        try:
            mirror.export(sha, tree)
        except GitError as exc:
            raise StepFailed(Reason.GIT_FETCH_FAILED, str(exc), transient=True) from exc
        checkpoint("export")
        return Candidate(loc, sha, tree)

    def discover(self, c: Candidate) -> Candidate:
        named, working_directory = self.repo(c).target_for(c.location.entry)
        if named is not None:
            return replace(c, target=named)
        try:
            target = discover_target(c.tree, working_directory)
        except DiscoveryError as exc:
            raise StepFailed(Reason.CODE_TARGET_NOT_FOUND, f"{c.sha[:12]}: {exc}") from exc
        return replace(c, target=target)

    def resolution(self, c: Candidate) -> Resolution:
        uv = self.repo(c).uv
        return Resolution(tuple(uv.constraints), tuple(uv.overrides))

    def install(self, c: Candidate) -> Candidate:
        resolution = self.resolution(c)
        env = self.builder.existing(c.project, resolution)
        if env is None:
            with self.install_slots:
                env = self._guard(c, lambda: self.builder.ensure(c.project, resolution)[0])
        return replace(c, env=env)

    def build(self, c: Candidate, mirror: Mirror) -> Candidate:
        """Install the project's own package and run the repo's build steps, once per
        (commit, dependency hash, steps); the location's tree is a copy of the result."""
        assert c.env is not None and c.target is not None
        steps = self.repo(c).build_for(c.location.entry)
        packaged = _packaged(c.project)
        if not steps and not packaged:
            return c
        site = c.project / SITE
        key = self._build_key(c, steps)
        marker = c.tree / PREPARED
        if not (marker.is_file() and marker.read_text().strip() == key):
            built = self._prepared(c, mirror, key, steps)
            _replace_tree(built, c.tree)
        return replace(c, pythonpath=(str(site),) if site.is_dir() else ())

    def environment(self, c: Candidate, debug: bool) -> Candidate:
        environ = self._environ(c, c.tree)
        pythonpath = list(c.pythonpath)
        if debug:
            assert c.env is not None
            version = c.env.python_version()
            tool = self._guard(c, lambda: self.builder.tool("debugpy", version))
            pythonpath.append(str(tool))
        if pythonpath:
            environ["PYTHONPATH"] = os.pathsep.join(pythonpath)
        assert c.env is not None
        _activate(environ, c.env)
        return replace(c, environ=environ)

    def prepare(
        self,
        mirror: Mirror,
        loc: LocationSpec,
        sha: str,
        debug: bool = False,
        timings: dict[str, float] | None = None,
        on_step: Callable[[str], None] = lambda _step: None,
    ) -> Candidate:
        """Every step up to the load check; each step's seconds go into `timings`, and
        `on_step` hears each step's name as it begins (progress for users)."""
        t = timings if timings is not None else {}
        on_step("checkout")
        with timed(t, "checkout"):
            c = self.checkout(mirror, loc, sha)
        on_step("discover")
        with timed(t, "discover"):
            c = self.discover(c)
        on_step("install")
        with timed(t, "install"):
            c = self.install(c)
        on_step("build")
        with timed(t, "build"):
            c = self.build(c, mirror)
        on_step("environment")
        with timed(t, "environment"):
            return self.environment(c, debug)

    # ---- helpers ----------------------------------------------------------------------
    def _environ(self, c: Candidate, tree: Path) -> dict[str, str]:
        assert c.target is not None
        try:
            return location_environ(
                self.fleet,
                c.location,
                c.sha,
                self.layout.dagster_home,
                str(self.layout.root),
                checkout=tree,
                project_dir=tree / c.target.working_directory,
            )
        except SecretMissing as exc:
            raise StepFailed(Reason.SECRET_NOT_FOUND, str(exc)) from exc
        except UnknownReference as exc:  # the loader refuses these; a safety net
            raise StepFailed(Reason.CODE_TARGET_NOT_FOUND, str(exc)) from exc

    def _guard(self, c: Candidate, call: Callable[[], T]) -> T:
        try:
            return call()
        except InstallCancelled as exc:
            raise StepCancelled(str(exc)) from exc
        except DagsterVersionUnsupported as exc:
            raise StepFailed(Reason.DAGSTER_VERSION_UNSUPPORTED, f"{c.sha[:12]}: {exc}") from exc
        except InstallError as exc:
            retry = " (the index or network failed; retrying)" if exc.transient else ""
            raise StepFailed(
                Reason.DEPENDENCY_INSTALL_FAILED,
                f"{c.sha[:12]}: {exc}{retry}\n{exc.tail}",
                transient=exc.transient,
            ) from exc

    def _build_key(self, c: Candidate, steps: list[BuildStep]) -> str:
        assert c.env is not None and c.target is not None
        digest = hashlib.sha256(f"{c.sha};{c.env.hash};{c.target.working_directory}".encode())
        for step in steps:
            digest.update(step.model_dump_json().encode())
        return digest.hexdigest()[:16]

    def _prepared(self, c: Candidate, mirror: Mirror, key: str, steps: list[BuildStep]) -> Path:
        """`builds/<repo>/<sha>-<key>`: the tree with the project installed and the
        steps run, made aside and renamed, so a crash never leaves a half build."""
        assert c.env is not None and c.target is not None
        where = self.layout.builds(c.location.repo)
        built = where / f"{c.sha}-{key}"
        with exclusive(where, key):
            if (built / PREPARED).is_file():
                return built
            work = where / f".{c.sha}-{key}.work"
            shutil.rmtree(work, ignore_errors=True)
            try:
                mirror.export(c.sha, work)
            except GitError as exc:
                raise StepFailed(Reason.GIT_FETCH_FAILED, str(exc), transient=True) from exc
            project = work / c.target.working_directory
            env = c.env
            self._guard(c, lambda: self.builder.install_project(env, project, project / SITE))
            site = project / SITE
            environ = self._environ(c, work)
            if site.is_dir():
                environ["PYTHONPATH"] = str(site)
            for step in steps:
                self._run_step(c, step, project, environ)
            atomic_write(work / PREPARED, key + "\n")
            shutil.rmtree(built, ignore_errors=True)
            os.replace(work, built)
        _collect_builds(where, keep={built.name})
        return built

    def _run_step(
        self, c: Candidate, step: BuildStep, project: Path, environ: Mapping[str, str]
    ) -> None:
        assert c.env is not None
        env = dict(environ)
        _activate(env, c.env)
        log = self.layout.log(c.location.name)
        cwd = project / step.working_directory
        if not cwd.is_dir():
            raise StepFailed(
                Reason.BUILD_FAILED,
                f"{c.sha[:12]}: build step {step.run!r}: working_directory "
                f"{step.working_directory!r} does not exist in the commit",
            )
        child = spawn(
            f"build step: {step.run}", ["/bin/sh", "-c", step.run], cwd=cwd, env=env, log=log
        )
        deadline = time.monotonic() + step.timeout
        while child.alive():
            if self.cancel.is_set():
                child.stop(2.0)
                raise StepCancelled(f"stopped during build step {step.run!r}")
            if time.monotonic() > deadline:
                child.stop(2.0)
                raise StepFailed(
                    Reason.BUILD_FAILED,
                    f"{c.sha[:12]}: build step {step.run!r} timed out after "
                    f"{step.timeout:.0f}s (raise `timeout` in the repo file)",
                    transient=True,
                )
            time.sleep(0.05)
        code = child.proc.returncode
        if code != 0:
            tail = output_since_start(log, 200, "build step")
            raise StepFailed(
                Reason.BUILD_FAILED,
                f"{c.sha[:12]}: build step {step.run!r} exited with {code}\n"
                + lead_with_error(tail),
            )


def _activate(environ: dict[str, str], env: PythonEnv) -> None:
    """What activating the env does: its bin/ first on PATH (dagster-dbt runs `dbt`,
    build steps call the repo's tools), VIRTUAL_ENV set."""
    environ["VIRTUAL_ENV"] = str(env.path)
    environ["PATH"] = f"{env.path / 'bin'}{os.pathsep}{environ.get('PATH', os.defpath)}"


def _packaged(project: Path) -> bool:
    from dagfleet.venvs.project import detect

    return detect(project).packaged


def _replace_tree(built: Path, tree: Path) -> None:
    """Make `tree` a copy of `built`, swapping directories so a reader never sees a
    half-copied tree (a leftover `.prep`/`.old` is removed by the next pass or GC)."""
    prep = tree.with_name(tree.name + ".prep")
    old = tree.with_name(tree.name + ".old")
    shutil.rmtree(prep, ignore_errors=True)
    shutil.rmtree(old, ignore_errors=True)
    try:
        shutil.copytree(built, prep, symlinks=True)
    except OSError as exc:
        shutil.rmtree(prep, ignore_errors=True)
        # A full disk or the like: not the commit's fault, so retried.
        message = f"copying the prepared tree failed: {exc}"
        raise StepFailed(Reason.BUILD_FAILED, message, transient=True) from exc
    with contextlib.suppress(FileNotFoundError):
        os.replace(tree, old)
    os.replace(prep, tree)
    shutil.rmtree(old, ignore_errors=True)


def _collect_builds(where: Path, keep: set[str]) -> None:
    """Remove all but the KEEP_BUILDS newest prepared trees (and `keep`) of a repo."""
    done = [p for p in where.iterdir() if p.is_dir() and not p.name.startswith(".")]
    done.sort(key=lambda p: p.stat().st_mtime, reverse=True)
    for path in done[KEEP_BUILDS:]:
        if path.name not in keep:
            shutil.rmtree(path, ignore_errors=True)


def describe(exc: BaseException) -> str:
    """An unexpected exception, leading with its type and message."""
    return lead_with_error("".join(traceback.format_exception(exc)))
