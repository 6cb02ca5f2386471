"""Build a location's virtualenv with uv, atomically, once per dependency hash.

The repo's own pins win (its uv.lock, requirements or project metadata,
including its dagster version; see `envs.project` for the shapes). What
dagfleet adds is resolved *with* them, never computed: the small
`dagfleet-runtime` package, the instance's storage client only when the fleet
uses it (dagster-postgres, boto3 for s3://), and dagster itself, limited to the
range the central instance serves (`envs.dagster_range`). For a locked project
the lock is installed as it is and the additions are resolved against what it
installed (a constraint per installed package), so the versions always match.

The env holds dependencies only, and is shared by every commit with the same
dependency hash. The project's own package is built by its backend and
installed, non-editable and without dependencies, per commit into that commit's
tree (`install_project`), so a commit never imports another commit's code.
debugpy is not part of any env: it is installed once per Python version beside
the envs (`tool`) and put on the path of debugged servers only.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import threading
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

from dagfleet.fsutil import exclusive
from dagfleet.procgroup import kill_group
from dagfleet.venvs import dagster_range
from dagfleet.venvs.dagster_range import DagsterVersionUnsupported
from dagfleet.venvs.deps import dependency_hash
from dagfleet.venvs.project import detect, locked_version

INSTALL_TIMEOUT = 900.0
ERROR_TAIL = 40


class InstallError(Exception):
    """Installing dependencies failed; `tail` is the installer's last lines.

    `transient` means the failure says nothing about the repo (the index or the
    network was unreachable, the install timed out): the same commit is retried.
    """

    def __init__(self, message: str, tail: str, transient: bool = False) -> None:
        super().__init__(message)
        self.tail = tail
        self.transient = transient


# How uv words failures to reach an index; anything else (no solution, a build
# that fails, a package that does not exist) is the repo's to fix.
_NETWORK_ERRORS = re.compile(
    r"error sending request|tcp connect error|connection refused|connection reset|"
    r"dns error|failed to lookup address|network is unreachable|operation timed out|"
    r"timed out|failed to fetch|failed to download|could not connect|"
    r"\b(?:500|502|503|504) (?:internal server error|bad gateway|service unavailable|"
    r"gateway timeout)",
    re.IGNORECASE,
)
_RESOLUTION_FAILED = re.compile(r"no solution found|unsatisfiable", re.IGNORECASE)


def is_transient(output: str) -> bool:
    """Whether uv's output says the index or network failed, not the requirements."""
    return bool(_NETWORK_ERRORS.search(output)) and not _RESOLUTION_FAILED.search(output)


class InstallCancelled(InstallError):
    """dagfleet is stopping: the install was killed, not the user's dependencies at fault."""


@dataclass(frozen=True)
class Resolution:
    """A repo's own resolution controls (uv constraints and overrides, PEP 508 lines)."""

    constraints: tuple[str, ...] = ()
    overrides: tuple[str, ...] = ()

    def salt(self) -> str:
        return "c=" + "|".join(self.constraints) + ";o=" + "|".join(self.overrides)

    def args(self, where: Path) -> list[str]:
        """uv flags for these controls; their files are written under `where`."""
        out: list[str] = []
        for flag, lines in (("--constraint", self.constraints), ("--override", self.overrides)):
            if lines:
                where.mkdir(parents=True, exist_ok=True)
                path = where / f"{flag[2:]}s.txt"
                path.write_text("\n".join(lines) + "\n")
                out += [flag, str(path)]
        return out


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

    def python_version(self) -> str:
        """`3.11` etc., from pyvenv.cfg (the interpreter the env was made with)."""
        try:
            text = (self.path / "pyvenv.cfg").read_text()
        except OSError:
            return f"{sys.version_info.major}.{sys.version_info.minor}"
        for line in text.splitlines():
            key, _, value = line.partition("=")
            if key.strip() in ("version_info", "version"):
                return ".".join(value.strip().split(".")[:2])
        return f"{sys.version_info.major}.{sys.version_info.minor}"


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
    return f"{py};dagster={version('dagster')};runtime={digest.hexdigest()[:12]};v4"


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

    def hash_for(self, project: Path, resolution: Resolution = Resolution()) -> str:
        salt = f"{platform_salt()};{','.join(self.extras)};{resolution.salt()}"
        return dependency_hash(project, salt)

    def existing(self, project: Path, resolution: Resolution = Resolution()) -> PythonEnv | None:
        key = self.hash_for(project, resolution)
        env = PythonEnv(self.venvs / key, key)
        return env if (env.path / ".dagfleet-complete").exists() else None

    def ensure(
        self, project: Path, resolution: Resolution = Resolution()
    ) -> tuple[PythonEnv, bool]:
        """The env for `project`'s dependency hash; (env, built_now).

        Raises InstallError, or DagsterVersionUnsupported when the repo's dagster
        is outside the range the central instance serves.
        """
        key = self.hash_for(project, resolution)
        env = PythonEnv(self.venvs / key, key)
        marker = env.path / ".dagfleet-complete"
        if marker.exists():
            return env, False
        with exclusive(self.venvs, key):
            if marker.exists():
                return env, False
            tmp = self.venvs / f".{key}.building"
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.rmtree(env.path, ignore_errors=True)
            try:
                self._build(project, tmp, resolution)
            except (InstallError, DagsterVersionUnsupported):
                shutil.rmtree(tmp, ignore_errors=True)
                raise
            # Built aside and renamed, so a crash never leaves a half env under the final
            # name. The scripts in bin/ (dbt, dagster, ...) name the build path in their
            # shebangs: point them at the final one, for build steps that call them.
            _repoint_scripts(tmp / "bin", tmp, env.path)
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
            raise InstallError("dependency install timed out", str(exc), transient=True) from exc
        finally:
            with self._guard:
                self._running.discard(proc)
        if self._cancelled:
            raise InstallCancelled("dagfleet is stopping", "")
        if proc.returncode != 0:
            output = (stderr + stdout).strip()
            lines = output.splitlines()
            raise InstallError(
                f"`uv {args[0]}{' ' + args[1] if args[0] == 'pip' else ''}` failed",
                "\n".join(lines[-ERROR_TAIL:]) or "(no output)",
                transient=is_transient(output),
            )

    def _build(self, project: Path, venv: Path, resolution: Resolution) -> None:
        shape = detect(project)
        python = _python_for(project)
        runtime = runtime_package()
        libraries = [e for e in self.extras if e.startswith("dagster-")]
        additions = [e for e in self.extras if e not in libraries]
        additions += [str(runtime)] if runtime is not None else []
        if shape.locked:
            locked = locked_version(project, "dagster")
            if locked is not None:
                dagster_range.check(locked)
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
            # The lock is installed as it is; resolve the additions against it.
            controls = resolution.args(venv / ".dagfleet")
            frozen = self._freeze(venv)
            (venv / ".dagfleet").mkdir(exist_ok=True)
            (venv / ".dagfleet" / "installed.txt").write_text(frozen)
            pins = ["--constraint", str(venv / ".dagfleet" / "installed.txt")]
            if PythonEnv(venv, "").dagster_version() is None:
                additions.append(dagster_range.supported_spec())
            self._run(
                ["pip", "install", "--python", str(venv), *pins, *controls, *additions],
                project,
                venv,
            )
        else:
            self._run(["venv", "--quiet", "--python", python, str(venv)], project, venv)
            controls = resolution.args(venv / ".dagfleet")  # after the venv: uv wants it new
            sources = [a for path in shape.sources for a in ("-r", str(path))]
            # One resolution: the repo's requirements, dagster within the supported
            # range (unpinned repos get the newest such release) and dagfleet's additions.
            wanted = [dagster_range.supported_spec(), *additions]
            try:
                self._run(
                    ["pip", "install", "--python", str(venv), *controls, *sources, *wanted],
                    project,
                    venv,
                )
            except InstallError as exc:
                requested = _conflicting_dagster(exc.tail)
                if requested is not None:
                    raise DagsterVersionUnsupported(
                        requested, dagster_range.central_version()
                    ) from exc
                raise
        installed = PythonEnv(venv, "").dagster_version()
        if installed is None:
            raise InstallError("dagster is not installed in the env", "(no dagster dist-info)")
        dagster_range.check(installed)
        if libraries:
            self._install_libraries(project, venv, installed, libraries, resolution)

    def _install_libraries(
        self,
        project: Path,
        venv: Path,
        dagster_version: str,
        libraries: list[str],
        resolution: Resolution,
    ) -> None:
        """Dagster libraries the instance needs (its storage client), resolved against
        the installed env. Each library release pins one exact dagster, and the index
        can have a dagster release before its libraries (dagster 1.13.29 with
        dagster-postgres at 0.29.27): then the newest library of the same release series
        is taken, the resolver told that its dagster requirement is the installed one.
        The library series of dagster 1.N is 0.(N+16), as Dagster numbers them: only
        the series is derived, the release within it is the resolver's choice."""
        meta = venv / ".dagfleet"
        meta.mkdir(exist_ok=True)
        (meta / "installed.txt").write_text(self._freeze(venv))
        pins = ["--constraint", str(meta / "installed.txt"), *resolution.args(meta)]
        base = ["pip", "install", "--python", str(venv), *pins]
        # The series bound matters: old releases (0.11) carry no dagster pin at all and
        # would "resolve" with any dagster, then fail to import.
        minor = int(dagster_version.split(".")[1])
        series = [f"{lib}>=0.{minor + 16},<0.{minor + 17}" for lib in libraries]
        try:
            self._run([*base, *series], project, venv)
            return
        except InstallError as exc:
            if exc.transient:
                raise
        (meta / "dagster.txt").write_text(f"dagster=={dagster_version}\n")
        self._run([*base, "--override", str(meta / "dagster.txt"), *series], project, venv)

    def _freeze(self, venv: Path) -> str:
        result = subprocess.run(
            [uv_binary(), "pip", "freeze", "--python", str(venv)],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise InstallError("`uv pip freeze` failed", result.stderr.strip())
        # Editable and path installs cannot be constraints; versions of the rest can.
        return "\n".join(line for line in result.stdout.splitlines() if "==" in line) + "\n"

    def install_project(self, env: PythonEnv, project: Path, site: Path) -> bool:
        """Build the project's own package with its backend and install it (no deps,
        non-editable) into `site`, once; False for a virtual project (nothing to do).

        Non-editable, as in the rendered Dockerfile (`uv sync --no-editable`): the
        package is what the commit's backend builds (its package data included), and
        an env shared by commits never points into one commit's tree.
        """
        if not detect(project).packaged:
            return False
        done = site / ".dagfleet-complete"
        if done.exists():
            return True
        tmp = site.with_name(site.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(site, ignore_errors=True)
        args = ["pip", "install", "--python", str(env.python), "--no-deps", "--target", str(tmp)]
        try:
            self._run([*args, str(project)], project, env.path)
        except InstallError:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        (tmp / ".dagfleet-complete").write_text(env.hash + "\n")
        os.replace(tmp, site)
        return True

    def tool(self, package: str, python_version: str) -> Path:
        """A directory holding `package` for that Python (for PYTHONPATH), installed once."""
        key = f"{package}-py{python_version}"
        where = self.venvs / ".tools" / key
        if (where / ".dagfleet-complete").exists():
            return where
        with exclusive(self.venvs / ".tools", key):
            if (where / ".dagfleet-complete").exists():
                return where
            tmp = where.with_name(key + ".building")
            shutil.rmtree(tmp, ignore_errors=True)
            args = ["pip", "install", "--python-version", python_version, "--target", str(tmp)]
            try:
                self._run([*args, package], self.venvs, tmp)
            except InstallError:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
            (tmp / ".dagfleet-complete").write_text(key + "\n")
            shutil.rmtree(where, ignore_errors=True)
            os.replace(tmp, where)
        return where


def _repoint_scripts(bin_dir: Path, old: Path, new: Path) -> None:
    """Rewrite `#!<old>/bin/python` shebangs of the env's scripts to `<new>`."""
    before, after = f"#!{old}/".encode(), f"#!{new}/".encode()
    for script in bin_dir.iterdir() if bin_dir.is_dir() else []:
        if script.is_symlink() or not script.is_file():
            continue
        with open(script, "rb") as fh:
            head = fh.read(len(before))
        if head == before:
            data = script.read_bytes()
            script.write_bytes(after + data[len(before) :])


def _conflicting_dagster(output: str) -> str | None:
    """The dagster the repo requires, when resolution failed because it is outside the
    supported range (uv names both sides of the conflict); None for other failures."""
    ours = dagster_range.supported_spec()
    if not _RESOLUTION_FAILED.search(output) or ours not in output:
        return None
    for match in re.finditer(r"\bdagster(?:===?|~=|>=|<=|>|<)\s*([0-9][0-9a-z.]*)", output):
        spec = match.group(0)
        if spec in ours:
            continue
        try:
            dagster_range.check(match.group(1))
        except DagsterVersionUnsupported:
            return spec.removeprefix("dagster").strip()
    return None


def _python_for(project: Path) -> str:
    pinned = project / ".python-version"
    if pinned.exists():
        return pinned.read_text().strip().splitlines()[0]
    return getattr(sys, "_base_executable", sys.executable)
