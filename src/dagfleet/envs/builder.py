"""Build a location's virtualenv with uv, atomically, once per dependency hash.

The repo's own pins win (its uv.lock, requirements or pyproject dependencies,
including its dagster version). dagfleet adds only what it needs to run the
code server: dagster when the repo does not ask for it, the small
`dagfleet-runtime` package (compute-log routing, storage helper) and debugpy.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

from dagfleet.envs.deps import dependency_hash
from dagfleet.runtime.processes import kill_group
from dagfleet.spec import Fleet

INSTALL_TIMEOUT = 900.0
ERROR_TAIL = 40


class InstallError(Exception):
    """Installing dependencies failed; `tail` is the installer's last lines."""

    def __init__(self, message: str, tail: str) -> None:
        super().__init__(message)
        self.tail = tail


class InstallCancelled(InstallError):
    """dagfleet is stopping: the install was killed, not the user's dependencies at fault."""


@dataclass(frozen=True)
class PythonEnv:
    path: Path
    hash: str

    @property
    def python(self) -> Path:
        return self.path / "bin" / "python"

    def dagster_version(self) -> str | None:
        """Read from the installed dist-info, without starting Python."""
        for info in self.path.glob("lib/python*/site-packages/dagster-*.dist-info"):
            parts = info.name[: -len(".dist-info")].split("-")
            if len(parts) == 2:
                return parts[1]
        return None


def uv_binary() -> str:
    here = Path(sys.executable).parent / "uv"
    if here.exists():
        return str(here)
    found = shutil.which("uv")
    if not found:
        raise InstallError("uv not found", "install it with `python3 -m pip install uv`")
    return found


def runtime_package() -> Path | None:
    """The source of dagfleet-runtime to install into location envs, if shipped."""
    candidates = [
        Path(__file__).resolve().parents[3] / "packages" / "dagfleet-runtime",
        Path(__file__).resolve().parents[1] / "_packages" / "dagfleet-runtime",
    ]
    return next((c for c in candidates if (c / "pyproject.toml").exists()), None)


def platform_salt() -> str:
    """What dagfleet itself adds to every env; a change here must rebuild envs."""
    runtime = runtime_package()
    digest = hashlib.sha256()
    for path in sorted(runtime.rglob("*.py")) if runtime else []:
        digest.update(path.read_bytes())
    py = f"py{sys.version_info.major}.{sys.version_info.minor}"
    return f"{py};dagster={version('dagster')};runtime={digest.hexdigest()[:12]};v3"


def fleet_extras(fleet: Fleet) -> tuple[str, ...]:
    """Packages every location env of this fleet needs: boto3 uploads step logs to S3."""
    return ("boto3",) if fleet.spec.storage.is_s3 else ()


_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


@contextmanager
def _env_lock(root: Path, key: str) -> Iterator[None]:
    with _locks_guard:
        lock = _locks.setdefault(key, threading.Lock())
    with lock:
        root.mkdir(parents=True, exist_ok=True)
        with open(root / f".{key}.lock", "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)


class EnvBuilder:
    def __init__(
        self,
        venvs: Path,
        uv_cache: Path | None = None,
        extras: tuple[str, ...] = (),
        state_marker: str | None = None,
    ) -> None:
        """`extras`: what the fleet needs in every env (boto3 for an s3:// storage root).

        `state_marker` is put in the installer's environment as DAGFLEET_STATE, like
        every other process dagfleet starts, so that leftovers can be found.
        """
        self.venvs = venvs
        self.uv_cache = uv_cache
        self.extras = extras
        self.state_marker = state_marker
        self._running: set[subprocess.Popen[str]] = set()
        self._guard = threading.Lock()
        self._cancelled = False

    def cancel(self) -> None:
        """Kill the installs in progress and refuse new ones (dagfleet is stopping)."""
        with self._guard:
            self._cancelled = True
            running = list(self._running)
        for proc in running:
            kill_group(proc.pid)

    def hash_for(self, project: Path) -> str:
        return dependency_hash(project, platform_salt() + ";" + ",".join(self.extras))

    def existing(self, project: Path) -> PythonEnv | None:
        key = self.hash_for(project)
        env = PythonEnv(self.venvs / key, key)
        return env if (env.path / ".dagfleet-complete").exists() else None

    def ensure(self, project: Path) -> tuple[PythonEnv, bool]:
        """The env for `project`'s dependency hash; (env, built_now). Raises InstallError."""
        key = self.hash_for(project)
        env = PythonEnv(self.venvs / key, key)
        marker = env.path / ".dagfleet-complete"
        if marker.exists():
            return env, False
        with _env_lock(self.venvs, key):
            if marker.exists():
                return env, False
            tmp = self.venvs / f".{key}.building"
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.rmtree(env.path, ignore_errors=True)
            try:
                self._build(project, tmp)
            except InstallError:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
            # Built aside and renamed, so a crash never leaves a half env under the final
            # name. The scripts in bin/ keep the build path in their shebangs, which is
            # why dagfleet always runs `bin/python -m ...` and never those scripts.
            os.replace(tmp, env.path)
            (env.path / ".dagfleet-complete").write_text(key + "\n")
            return env, True

    def _run(self, args: list[str], cwd: Path, venv: Path) -> None:
        env = dict(os.environ)
        env.pop("VIRTUAL_ENV", None)
        env["UV_PROJECT_ENVIRONMENT"] = str(venv)
        env["UV_PYTHON_DOWNLOADS"] = "never"
        env.setdefault("UV_LINK_MODE", "copy" if os.environ.get("DAGFLEET_UV_COPY") else "hardlink")
        # Compile once here rather than in every code server, run worker and step
        # process: with PYTHONDONTWRITEBYTECODE set they would otherwise compile Dagster
        # from source at each start (about 2 s on 2 cores).
        env.setdefault("UV_COMPILE_BYTECODE", "1")
        if self.uv_cache:
            env["UV_CACHE_DIR"] = str(self.uv_cache)
        if self.state_marker:
            env["DAGFLEET_STATE"] = self.state_marker
        with self._guard:
            if self._cancelled:
                raise InstallCancelled("dagfleet is stopping", "")
            proc = subprocess.Popen(
                [uv_binary(), *args],
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                start_new_session=True,  # its own group: cancel() kills uv's children too
            )
            self._running.add(proc)
        try:
            stdout, stderr = proc.communicate(timeout=INSTALL_TIMEOUT)
        except subprocess.TimeoutExpired as exc:
            kill_group(proc.pid)
            proc.communicate()
            raise InstallError("dependency install timed out", str(exc)) from exc
        finally:
            with self._guard:
                self._running.discard(proc)
        if self._cancelled:
            raise InstallCancelled("dagfleet is stopping", "")
        if proc.returncode != 0:
            lines = (stderr + stdout).strip().splitlines()
            raise InstallError(
                f"`uv {args[0]}` failed", "\n".join(lines[-ERROR_TAIL:]) or "(no output)"
            )

    def _build(self, project: Path, venv: Path) -> None:
        python = _python_for(project)
        lock, pyproject = project / "uv.lock", project / "pyproject.toml"
        if lock.exists() and pyproject.exists():
            self._run(
                [
                    "sync",
                    "--frozen",
                    "--no-dev",
                    "--no-install-project",
                    "--python",
                    python,
                    "--project",
                    str(project),
                ],
                project,
                venv,
            )
        else:
            self._run(["venv", "--quiet", "--python", python, str(venv)], project, venv)
            reqs = sorted(project.glob("requirements*.txt"))
            req_args = [a for r in reqs for a in ("-r", str(r))]
            if pyproject.exists() and not reqs:
                req_args = ["-r", str(pyproject)]
            elif (project / "setup.py").exists() or (project / "setup.cfg").exists():
                req_args += [str(project)]
            if req_args:
                self._run(["pip", "install", "--python", str(venv), *req_args], project, venv)
        extras = ["debugpy", *self.extras]
        installed = PythonEnv(venv, "").dagster_version()
        if installed is None:
            extras.append(f"dagster=={version('dagster')}")
        # Run workers load the central instance, so they need its storage client in the
        # version that matches the repo's own dagster (libraries are 0.(minor+16).patch).
        extras.append(_library_pin("dagster-postgres", installed or version("dagster")))
        runtime = runtime_package()
        if runtime is not None:
            extras.append(str(runtime))
        self._run(["pip", "install", "--python", str(venv), *extras], project, venv)


def _library_pin(name: str, dagster_version: str) -> str:
    parts = dagster_version.split(".")
    if len(parts) >= 3 and parts[0] == "1" and parts[1].isdigit():
        return f"{name}==0.{int(parts[1]) + 16}.{parts[2]}"
    return name


def _python_for(project: Path) -> str:
    pinned = project / ".python-version"
    if pinned.exists():
        return pinned.read_text().strip().splitlines()[0]
    return getattr(sys, "_base_executable", sys.executable)
