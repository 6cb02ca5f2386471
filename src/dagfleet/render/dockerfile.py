"""`render dockerfile REPO`: one image per repo, built from the repo's own checkout.

The image installs the repo's locked dependencies with uv (`uv sync --locked
--no-install-project`, so a repo without uv.lock fails loudly instead of
drifting), then, pinned to what the lock chose, the Dagster pieces every deploy
target needs (dagster-webserver and dagster-postgres for seed 003's one-image
services, dagster-k8s and dagster-aws for the run launchers, debugpy for debug
environments); both layers are reused until pyproject.toml or uv.lock change.
After copying the checkout it installs the project itself with `uv sync
--inexact`: a plain `uv sync` is exact and would uninstall those extras again,
since the repo's lock does not list them. It runs as a non-root user and starts
`dagster code-server start` on port 4000; a repo that names no target starts
through the launcher, which resolves `[tool.dagster]`/`[tool.dg]`/workspace.yaml
with Dagster's loader.
BuildKit is required (the launcher is written with a heredoc).
"""

from __future__ import annotations

import json

from dagfleet.render import common as c
from dagfleet.render.launcher import LAUNCHER_SOURCE
from dagfleet.spec.models import Fleet, LocationSpec

PYTHON_IMAGE = "python:3.11-slim"
UV_IMAGE = "ghcr.io/astral-sh/uv:0.9"
EXTRAS = ("dagster-webserver", "dagster-postgres", "dagster-k8s", "dagster-aws", "debugpy")


def dockerfile_text(fleet: Fleet, repo_name: str) -> str:
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
    return f"""# syntax=docker/dockerfile:1.7
# Rendered by dagfleet for repo {repo.name} ({repo.git_url}). Build from the repo root:
#   docker build -f Dockerfile -t <registry>/{repo.name}:<sha> .
FROM {PYTHON_IMAGE}
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

# Locked dependencies first: this layer is reused until pyproject.toml or uv.lock change.
COPY {src}pyproject.toml {src}uv.lock ./
RUN uv sync --locked --no-dev --no-install-project
# Deployment extras, constrained to the versions the lock already chose.
RUN uv pip freeze > /tmp/locked.txt \\
    && uv pip install --constraint /tmp/locked.txt {" ".join(EXTRAS)} \\
    && rm /tmp/locked.txt

COPY . {c.APP_DIR}
# --inexact: a plain sync is exact and would uninstall the extras (the lock does not list them).
RUN uv sync --locked --no-dev --no-editable --inexact

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


def render_dockerfile(fleet: Fleet, repo_name: str) -> c.Rendered:
    """Raises KeyError naming the known repos when `repo_name` is not in the fleet."""
    if repo_name not in fleet.repos:
        known = ", ".join(sorted(fleet.repos)) or "none"
        raise KeyError(f"repo {repo_name!r} is not in the fleet (known: {known})")
    return {"Dockerfile": dockerfile_text(fleet, repo_name)}
