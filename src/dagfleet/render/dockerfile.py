"""`render dockerfile REPO`: one image per repo, built from the repo's own checkout.

The image installs the repo the way dagfleet's local builder does
(dagfleet.venvs.builder, dagfleet.venvs.project), for every project shape. The
render runs offline from the fleet files and cannot see the repo, so the shape
is decided when the image is built, from the files present, by a small POSIX
shell script written into the image (INSTALL_SCRIPT, /opt/dagfleet/install.sh):

- Locked (uv.lock and pyproject.toml): `uv sync --locked --no-dev
  --no-install-project`, then dagfleet's additions resolved against what the
  lock installed (`uv pip freeze` as a constraint file). This layer comes
  before the tree is copied and is reused until pyproject.toml or uv.lock
  change. After the copy, `uv sync --locked --no-dev --no-editable --inexact`
  installs the project itself (a plain sync is exact and would uninstall the
  additions, which the lock does not list). Unlike the local builder's
  `--frozen`, `--locked` fails the build when uv.lock is stale.
- Unlocked: after the tree is copied, one `uv pip install` of every
  requirement source (requirements*.txt, then pyproject.toml when it declares
  a project, else setup.py, else setup.cfg, each as `-r`) with the additions;
  then, for a packaged project (a [build-system] or setup.py/setup.cfg, unless
  `[tool.uv] package` says otherwise), the project itself, built by its
  backend, non-editable, without dependencies (`uv pip install --no-deps .`).
  pyproject.toml is read with the image Python's tomllib, as dagfleet does.

The additions (/opt/dagfleet/additions.txt): dagster within the range the
central instance serves (dagfleet.venvs.dagster_range) and what every deploy
target needs (dagster-webserver and dagster-postgres for seed 003's one-image
services, dagster-k8s and dagster-aws for the run launchers, debugpy for debug
environments). The repo's uv constraints and overrides (`uv:` in the repo file)
are written into the image as files and apply to both shapes.

After the install, dagfleet-runtime's modules, read from the renderer's own
installed copy (`runtime_sources`), are written into /opt/dagfleet/runtime and
put on the venv's path with a `.pth` file: the rendered instances name its
step-log manager (render/compute_logs.py), so every process loading them
(webserver, daemon, code servers, run workers) must import it, and a package
index may not hold dagfleet-runtime at this exact version (or may hold another
project's package by that name). The image runs exactly the renderer's copy.

Then each of the repo's build steps is its own `RUN`, in order, in the project
directory (plus the step's working_directory), as `sh -c` under coreutils'
`timeout`, with the venv first on PATH, DAGFLEET_CHECKOUT / DAGFLEET_PROJECT_DIR
set to the image's code directory, DAGFLEET_FLEET / DAGFLEET_REPO, and the
repo's `value`s that need nothing environment-specific (a value referring to
an environment's storage, or to DAGFLEET_ENV / DAGFLEET_LOCATION, belongs to a
location, not to the image, and is left out). Secrets never reach the image.

The base image's Python (`python:<version>-slim`) is the repo's when the render
can read it: `render dockerfile REPO --source DIR` reads the project's
`.python-version` (uv's pin, which the local builder also follows), else
`requires-python` in pyproject.toml (3.11 when it allows it, else the newest
CPython minor it allows); `--python X.Y` says it explicitly and wins. Without
either the image keeps Python 3.11 (DEFAULT_PYTHON). The render itself stays
pure: `python_from_files` is given the files' text.

It runs as a non-root user and starts `dagster code-server start` on port
4000; a repo that names no target starts through the launcher, which resolves
`[tool.dagster]`/`[tool.dg]`/workspace.yaml with Dagster's loader. BuildKit is
required (heredocs, and COPY of a wildcard that matches nothing).
"""

from __future__ import annotations

import json
import posixpath
import re
import tomllib
from collections.abc import Mapping
from importlib import resources

from dagfleet.render import common as c
from dagfleet.render.launcher import LAUNCHER_SOURCE
from dagfleet.spec.models import BuildStep, Fleet, LocationSpec, RepoSpec
from dagfleet.spec.references import expand, references
from dagfleet.venvs.dagster_range import library_floor, supported_spec

DEFAULT_PYTHON = "3.11"
# CPython minors an image may get from requires-python (dagster's supported range).
PYTHON_MINORS = ("3.10", "3.11", "3.12", "3.13")
PYTHON_IMAGE = f"python:{DEFAULT_PYTHON}-slim"
_PY_VERSION = re.compile(r"^(?:cpython-?)?(3\.\d+(?:\.\d+)?)$")
_SPEC = re.compile(r"^\s*(~=|==|!=|<=|>=|<|>)\s*([0-9][0-9.]*)(\.\*)?\s*$")
UV_IMAGE = "ghcr.io/astral-sh/uv:0.9"
EXTRAS = ("dagster-webserver", "dagster-postgres", "dagster-k8s", "dagster-aws", "debugpy")
INSTALL_DIR = c.LAUNCHER_DIR
INSTALL_PATH = f"{INSTALL_DIR}/install.sh"
# dagfleet-runtime's modules, as this dagfleet has them, on the venv's path (a .pth).
RUNTIME_PACKAGE = "dagfleet_runtime"
RUNTIME_DIR = f"{INSTALL_DIR}/runtime"
RUNTIME_PTH = "dagfleet_runtime.pth"

# `sh install.sh dependencies` (before the tree is copied) and `sh install.sh
# project` (after), in the project directory; files beside it: additions.txt,
# and constraints.txt / overrides.txt when the repo has them.
INSTALL_SCRIPT = """\
#!/bin/sh
# dagfleet's install (dagfleet.venvs.builder), decided from the files present.
set -eu
here=$(dirname "$0")
phase=$1
set --
for name in constraints overrides; do
  if [ -f "$here/$name.txt" ]; then set -- "$@" "--${name%s}" "$here/$name.txt"; fi
done
if [ -f uv.lock ] && [ -f pyproject.toml ]; then
  if [ "$phase" = dependencies ]; then
    # The lock as it is, then the additions resolved against what it installed.
    uv sync --locked --no-dev --no-install-project
    uv pip freeze > /tmp/dagfleet-freeze.txt
    grep '==' /tmp/dagfleet-freeze.txt > /tmp/dagfleet-locked.txt || true
    uv pip install --constraint /tmp/dagfleet-locked.txt "$@" -r "$here/additions.txt"
    rm -f /tmp/dagfleet-freeze.txt /tmp/dagfleet-locked.txt
  else
    # --inexact: a plain sync is exact and would uninstall the additions.
    uv sync --locked --no-dev --no-editable --inexact
  fi
  exit 0
fi
[ "$phase" = project ] || exit 0
# No lock: every requirement source and the additions in one resolution.
shape=$(python3 -c '
import pathlib, tomllib
try:
    data = tomllib.loads(pathlib.Path("pyproject.toml").read_text())
except (OSError, ValueError):
    data = {}
tool = data.get("tool", {})
setup = pathlib.Path("setup.py").is_file() or pathlib.Path("setup.cfg").is_file()
package = tool.get("uv", {}).get("package")
packaged = package if isinstance(package, bool) else bool(data.get("build-system")) or setup
declares = "project" in data or "poetry" in tool or bool(data.get("build-system"))
print("packaged" if packaged else "virtual", "pyproject" if declares else "-")
')
for req in requirements*.txt; do
  if [ -f "$req" ]; then set -- "$@" -r "$req"; fi
done
case $shape in
  *pyproject) set -- "$@" -r pyproject.toml ;;
  *) if [ -f setup.py ]; then set -- "$@" -r setup.py
     elif [ -f setup.cfg ]; then set -- "$@" -r setup.cfg; fi ;;
esac
uv venv --quiet "$VIRTUAL_ENV"
uv pip install "$@" -r "$here/additions.txt"
case $shape in
  # The project's own package, built by its backend: non-editable, no dependencies.
  packaged*) uv pip install --no-deps . ;;
esac
"""


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split(".") if p)


def _satisfies(ver: tuple[int, ...], part: str) -> bool:
    """One PEP 440 clause (`>=3.10`, `==3.12.*`, `~=3.11`...) against a full version."""
    match = _SPEC.match(part)
    if match is None:
        raise ValueError(part.strip())
    op, raw, star = match.groups()
    want = _version(raw)
    if star:
        same = ver[: len(want)] == want
        return same if op == "==" else not same if op == "!=" else False
    padded = want + (0,) * (len(ver) - len(want))
    if op == "~=":
        return ver >= padded and ver[: len(want) - 1] == want[:-1]
    return {
        "==": ver == padded,
        "!=": ver != padded,
        ">=": ver >= padded,
        ">": ver > padded,
        "<=": ver <= padded,
        "<": ver < padded,
    }[op]


def _allows(spec: str, minor: str) -> bool:
    """Whether a requires-python specifier set allows some patch release of `minor`."""
    major, mnr = _version(minor)[:2]
    parts = [p for p in spec.split(",") if p.strip()]
    return any(all(_satisfies((major, mnr, patch), part) for part in parts) for patch in range(100))


def python_from_files(files: Mapping[str, str], where: str = ".") -> str | None:
    """The Python version a repo asks for, from the text of its project files.

    `files` maps `.python-version` and/or `pyproject.toml` (relative to the
    project directory `where`) to their text. `.python-version` wins (its first
    line; `3.12`, `3.12.4` or `cpython-3.12`); else `requires-python`: 3.11 when
    allowed, else the newest of PYTHON_MINORS allowed. None when neither says.
    Raises ValueError naming the file when the version cannot be an image tag.
    """
    pin = files.get(".python-version")
    if pin is not None and pin.strip():
        first = pin.strip().splitlines()[0].strip()
        match = _PY_VERSION.match(first)
        if match is None:
            raise ValueError(
                f"{posixpath.join(where, '.python-version')}: {first!r} is not a CPython "
                "version the python image is published for (e.g. 3.12 or 3.12.4); pass "
                "--python X.Y"
            )
        return match.group(1)
    text = files.get("pyproject.toml")
    if text is None:
        return None
    try:
        spec = tomllib.loads(text).get("project", {}).get("requires-python")
    except tomllib.TOMLDecodeError:
        return None
    if not isinstance(spec, str) or not spec.strip():
        return None
    where_spec = f"{posixpath.join(where, 'pyproject.toml')}: project.requires-python {spec!r}"
    try:
        allowed = [m for m in PYTHON_MINORS if _allows(spec, m)]
    except ValueError as err:
        raise ValueError(f"{where_spec}: cannot read {err}; pass --python X.Y") from err
    if not allowed:
        raise ValueError(f"{where_spec} allows none of {', '.join(PYTHON_MINORS)}")
    return DEFAULT_PYTHON if DEFAULT_PYTHON in allowed else allowed[-1]


def additions() -> list[str]:
    """What the image adds to the repo's dependencies, one requirement a line."""
    return [supported_spec(), *(library_floor(name) for name in EXTRAS)]


def _heredoc(text: str, dest: str, delimiter: str) -> str:
    body = text if text.endswith("\n") else text + "\n"
    assert f"\n{delimiter}\n" not in f"\n{body}", f"{delimiter} inside its own heredoc"
    return f"COPY <<'{delimiter}' {dest}\n{body}{delimiter}\n"


def runtime_sources() -> dict[str, str]:
    """dagfleet-runtime's modules (`name.py` -> text), read from the installed package."""
    package = resources.files(RUNTIME_PACKAGE)
    return {
        entry.name: entry.read_text(encoding="utf-8")
        for entry in sorted(package.iterdir(), key=lambda e: e.name)
        if entry.name.endswith(".py") and entry.is_file()
    }


def _runtime_files() -> str:
    out = ""
    for name, text in runtime_sources().items():
        dest = f"{RUNTIME_DIR}/{RUNTIME_PACKAGE}/{name}"
        delimiter = "DAGFLEET_RUNTIME_" + re.sub(r"[^A-Za-z0-9]", "_", name).upper()
        out += _heredoc(text, dest, delimiter)
    return out


def _runtime_path() -> str:
    """A RUN putting RUNTIME_DIR on the venv's path (after the install, which creates
    the venv of an unlocked project; a locked `uv sync --inexact` keeps the file)."""
    code = (
        "import pathlib, sysconfig; "
        f"pathlib.Path(sysconfig.get_paths()['purelib'], '{RUNTIME_PTH}')"
        f".write_text('{RUNTIME_DIR}' + chr(10))"
    )
    return f'RUN python -c "{code}"\n'  # shell form: no quote, $ or backslash inside


def _control_files(repo: RepoSpec) -> str:
    out = ""
    for name, lines in (("constraints", repo.uv.constraints), ("overrides", repo.uv.overrides)):
        if lines:
            delimiter = f"DAGFLEET_{name.upper()}"
            out += _heredoc("\n".join(lines), f"{INSTALL_DIR}/{name}.txt", delimiter)
    return out


def build_step_env(fleet: Fleet, repo: RepoSpec, code_dir: str) -> dict[str, str]:
    """The variables a build step runs with in the image (see the module docstring)."""
    own = {
        "DAGFLEET_FLEET": fleet.name,
        "DAGFLEET_REPO": repo.name,
        "DAGFLEET_CHECKOUT": c.APP_DIR,
        "DAGFLEET_PROJECT_DIR": code_dir,
    }
    out = dict(own)
    for var in repo.environment:
        if var.value is not None and all(name in own for name in references(var.value)):
            out[var.name] = expand(var.value, own)
    return out


def _seconds(timeout: float) -> str:
    return f"{timeout:g}"


def build_step_run(step: BuildStep, code_dir: str, env: dict[str, str]) -> str:
    """One build step as an exec-form RUN (no Dockerfile or shell quoting to get wrong)."""
    cwd = posixpath.normpath(posixpath.join(code_dir, step.working_directory))
    argv = [
        "env",
        f"--chdir={cwd}",
        *(f"{k}={v}" for k, v in env.items()),
        "timeout",
        _seconds(step.timeout),
        "sh",
        "-c",
        step.run,
    ]
    return f"RUN {json.dumps(argv)}\n"


def _build_steps(fleet: Fleet, repo: RepoSpec, code_dir: str) -> str:
    if not repo.build:
        return ""
    env = build_step_env(fleet, repo, code_dir)
    out = "\n# The repo's build steps, in order, in the project directory.\n"
    for index, step in enumerate(repo.build, 1):
        out += f"# build step {index}: timeout {_seconds(step.timeout)}s\n"
        out += build_step_run(step, code_dir, env)
    return out


def dockerfile_text(fleet: Fleet, repo_name: str, python: str | None = None) -> str:
    repo = fleet.repos[repo_name]
    wd = repo.working_directory.rstrip("/")
    src = "" if wd == "." else f"{wd}/"
    code_dir = c.APP_DIR if wd == "." else f"{c.APP_DIR}/{wd}"
    loc = LocationSpec(name=repo.name, repo=repo.name, env="", ref="", poll_interval=1)
    args = c.target_args(fleet, loc, c.APP_DIR)
    if args is None:
        cmd = ["python", c.LAUNCHER_PATH]
    else:
        cmd = ["dagster", "code-server", "start", "--host", "0.0.0.0", "--port", "4000", *args]
    install = _heredoc(INSTALL_SCRIPT, INSTALL_PATH, "DAGFLEET_INSTALL")
    adds = _heredoc("\n".join(additions()), f"{INSTALL_DIR}/additions.txt", "DAGFLEET_ADDITIONS")
    return f"""# syntax=docker/dockerfile:1.7
# Rendered by dagfleet for repo {repo.name} ({repo.git_url}). Build from the repo root:
#   docker build -f Dockerfile -t <registry>/{repo.name}:<sha> .
FROM python:{python or DEFAULT_PYTHON}-slim
COPY --from={UV_IMAGE} /uv /uvx /bin/
ENV UV_COMPILE_BYTECODE=1 \\
    UV_LINK_MODE=copy \\
    UV_PROJECT_ENVIRONMENT=/opt/venv \\
    VIRTUAL_ENV=/opt/venv \\
    PATH=/opt/venv/bin:$PATH \\
    PYTHONUNBUFFERED=1 \\
    DAGSTER_HOME={c.DAGSTER_HOME} \\
    DAGFLEET_CODE_DIR={code_dir} \\
    DAGFLEET_LOCATION={repo.name}
WORKDIR {code_dir}

# How dagfleet installs a repo, for whichever shape it has (uv.lock or not).
{install}# dagster in the range the central instance serves, and what the deploy targets need.
{adds}{_control_files(repo)}
# A locked project's dependencies first (wildcards: either file may be absent):
# this layer is reused until pyproject.toml or uv.lock change.
COPY {src}pyproject.toml* {src}uv.lock* ./
RUN sh {INSTALL_PATH} dependencies

# The project itself (locked), or every requirement source and the project (unlocked).
COPY . {c.APP_DIR}
RUN sh {INSTALL_PATH} project
# dagfleet-runtime, as the renderer has it, on the venv's path: the step-log manager of
# the rendered instances, which every process loading the instance imports (webserver,
# daemon, run workers). After the install, so a new dagfleet keeps the dependency layers.
{_runtime_files()}{_runtime_path()}{_build_steps(fleet, repo, code_dir)}
COPY <<'DAGFLEET_LAUNCHER' {c.LAUNCHER_PATH}
{LAUNCHER_SOURCE}DAGFLEET_LAUNCHER

RUN useradd --uid 10001 --user-group --no-create-home dagster \\
    && mkdir -p {c.DAGSTER_HOME} {c.PLAYGROUND_DIR} \\
    && chown -R 10001:10001 {c.DAGSTER_HOME} {c.PLAYGROUND_DIR}
USER 10001
EXPOSE 4000
HEALTHCHECK CMD ["dagster", "api", "grpc-health-check", "-p", "4000"]
CMD {json.dumps(cmd)}
"""


def render_dockerfile(fleet: Fleet, repo_name: str, python: str | None = None) -> c.Rendered:
    """Raises KeyError naming the known repos when `repo_name` is not in the fleet.
    `python`: the image's Python (X.Y or X.Y.Z), e.g. from `python_from_files`."""
    if repo_name not in fleet.repos:
        known = ", ".join(sorted(fleet.repos)) or "none"
        raise KeyError(f"repo {repo_name!r} is not in the fleet (known: {known})")
    return {"Dockerfile": dockerfile_text(fleet, repo_name, python)}
