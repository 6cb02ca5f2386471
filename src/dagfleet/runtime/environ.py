"""The environment a location's code server runs with (and only that).

User code must not see dagfleet's own secrets (API tokens, webhook secrets), so
the code server's environment is built from an allowlist of the host's
variables plus the environment's and repo's variables and dagfleet's own.
Secret references are resolved here, at start, and nowhere else.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from dagfleet.spec import EnvVar, Fleet, LocationSpec
from dagfleet.spec.references import expand, target_values
from dagfleet.storage import ensure_layout, location_env

PASSTHROUGH = (
    "PATH",
    "HOME",
    "USER",
    "LANG",
    "LC_ALL",
    "TZ",
    "TMPDIR",
    "SSL_CERT_FILE",
    "REQUESTS_CA_BUNDLE",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "OPENBLAS_CORETYPE",
    "OPENBLAS_L2_SIZE",
)
PASSTHROUGH_PREFIXES = ("DAGSTER_POSTGRES_", "AWS_")


class SecretMissing(Exception):
    pass


def resolve(var: EnvVar, environ: Mapping[str, str], base: Path) -> str:
    """The value of one variable; references are read now and never stored."""
    if var.value is not None:
        return var.value
    if var.from_env is not None:
        if var.from_env not in environ:
            raise SecretMissing(
                f"environment.{var.name}: from_env {var.from_env} is not set in dagfleet's "
                "environment: export it before `dagfleet up`"
            )
        return environ[var.from_env]
    assert var.from_file is not None
    path = Path(var.from_file)
    path = path if path.is_absolute() else base / path
    try:
        return path.read_text().rstrip("\n")
    except OSError as exc:
        raise SecretMissing(f"environment.{var.name}: from_file {path}: {exc.strerror}") from exc


def storage_env(fleet: Fleet, repo: str, env: str) -> dict[str, str]:
    """The location's storage prefixes; creates the local layout on first use."""
    ensure_layout(fleet, repo, env)
    return location_env(fleet, repo, env)


def location_environ(
    fleet: Fleet,
    loc: LocationSpec,
    commit: str,
    dagster_home: Path,
    state_marker: str,
    host: Mapping[str, str] | None = None,
    checkout: Path | None = None,
    project_dir: Path | None = None,
) -> dict[str, str]:
    """The code server's environment. `checkout` and `project_dir` are the commit's
    tree and the location's working directory in it: they are exported as
    DAGFLEET_CHECKOUT / DAGFLEET_PROJECT_DIR and expand `${...}` references in the
    repo's values (see dagfleet.spec.references)."""
    host = os.environ if host is None else host
    out = {k: v for k, v in host.items() if k in PASSTHROUGH or k.startswith(PASSTHROUGH_PREFIXES)}
    pg = fleet.spec.instance.postgres
    if pg is not None and pg.password_env and pg.password_env in host:
        out[pg.password_env] = host[pg.password_env]
    storage = storage_env(fleet, loc.repo, loc.env)
    own = {
        "DAGFLEET_FLEET": fleet.name,
        "DAGFLEET_ENV": loc.env,
        "DAGFLEET_REPO": loc.repo,
        "DAGFLEET_LOCATION": loc.name,
        "DAGFLEET_COMMIT": commit,
        "DAGFLEET_STATE": state_marker,
        "DAGSTER_HOME": str(dagster_home),
        "PYTHONUNBUFFERED": "1",
    }
    if checkout is not None:
        own["DAGFLEET_CHECKOUT"] = str(checkout)
        own["DAGFLEET_PROJECT_DIR"] = str(project_dir or checkout)
    values = {**own, **target_values(str(checkout or ""), str(project_dir or ""), storage)}
    environment = fleet.environment(loc.env)
    out.update(environment.env)
    if not loc.playground:
        repo = fleet.repos[loc.repo]
        for var in repo.environment_for(loc.entry):
            value = resolve(var, host, Path(fleet.root))
            out[var.name] = expand(value, values) if var.value is not None else value
    out.update(storage)
    out.update(own)
    return out
