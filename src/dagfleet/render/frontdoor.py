"""What every target renders the same way for the front door (issue 14): the process,
the fleet files it reads, and the names of the secrets it is given by reference.

The front door is `dagfleet frontdoor serve` in an image carrying dagfleet: it
listens on FRONTDOOR_PORT, answers GET HEALTH_PATH without sign-in, and proxies
the Dagster UI (HTTP and the /graphql websockets) to the webserver it is given
with `--upstream`. The webserver is never published: only the front door is.

It reads the fleet (fleet.yaml `auth:`, and the repo files, for the locations its
roles are scoped by) from a directory. No target can hand it the fleet directory
itself, so `fleet_files` writes the loaded fleet back as YAML (fleet.yaml and
repos/<name>.yaml), which `dagfleet.spec.load_fleet` reads as the same fleet; the
files hold references (`from_env`/`from_file`), never a secret's value.

Secrets, always references (see docs/deploy.md, "Front door"):
- the session key (DAGFLEET_SESSION_KEY or DAGFLEET_SESSION_KEY_FILE), the same
  for every replica: key SESSION_KEY of the front door's secret;
- API tokens (DAGFLEET_API_TOKENS, `tok:role,...`), optional: key API_TOKENS;
- the local users file (`name scrypt$...` lines, what `dagfleet user add` writes),
  optional: key USERS of a secret of its own, so it can be replaced alone;
- the OIDC client secret, when fleet.yaml's `auth.oidc.client_secret` names one:
  `from_env: VAR` is key VAR, `from_file: path` is the path's base name
  (`oidc_secret`), the key convention of repo secrets (common.secret_key).
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import Any

import yaml

from dagfleet.spec.models import Fleet

FRONTDOOR_PORT = 3000
HEALTH_PATH = "/auth/healthz"
# Where the fleet files are, inside the front door's container.
FLEET_DIR = "/etc/dagfleet/fleet"
FLEET_FILE = "fleet.yaml"
REPOS_DIR = "repos"
# Secret names (Kubernetes) and their keys; the same keys name the ECS parameters' roles.
SECRET = "dagfleet-frontdoor"
USERS_SECRET = "dagfleet-frontdoor-users"
SESSION_KEY = "session-key"
API_TOKENS = "api-tokens"
USERS = "users"


@dataclass(frozen=True)
class OidcSecret:
    """Where fleet.yaml says the OIDC client secret is: an environment variable (`env`)
    or a file (`path`, absolute or relative to the fleet directory); `key` is the key
    it is stored under in the front door's secret."""

    key: str
    env: str | None = None
    path: str | None = None

    def container_path(self, fleet_dir: str = FLEET_DIR) -> str | None:
        """The file's path in the container (relative paths are under the fleet dir)."""
        if self.path is None:
            return None
        if self.path.startswith("/"):
            return posixpath.normpath(self.path)
        return posixpath.join(fleet_dir, self.relative_path())

    def relative_path(self) -> str:
        """A relative `from_file`, normalized (`./secrets/x` -> `secrets/x`)."""
        return posixpath.normpath(self.path or "")


def oidc_secret(fleet: Fleet) -> OidcSecret | None:
    """The OIDC client secret reference of fleet.yaml, or None (no single sign-on, or a
    public client using PKCE alone)."""
    oidc = fleet.spec.auth.oidc
    if oidc is None or oidc.client_secret is None:
        return None
    ref = oidc.client_secret
    if ref.from_env is not None:
        return OidcSecret(key=ref.from_env, env=ref.from_env)
    path = ref.from_file or ""
    base = path.rstrip("/").rsplit("/", 1)[-1]
    return OidcSecret(key=base, path=path)


def _dump(document: dict[str, Any]) -> str:
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True)


# What the front door never reads of a repo file: its process environment, build
# steps, uv controls and git credentials (references, but none of its business).
_REPO_PRIVATE: dict[str, Any] = {
    "environment": True,
    "build": True,
    "uv": True,
    "credentials": True,
    "locations": {"__all__": {"environment", "build"}},
}


def fleet_files(fleet: Fleet) -> dict[str, str]:
    """fleet.yaml and repos/<name>.yaml as `load_fleet` reads them back: the same fleet
    and the same locations (names, repos, environments, refs) that roles are scoped by.

    fleet.yaml is written whole, each repo file without _REPO_PRIVATE; only what
    differs from the defaults is written, and nothing here is a secret's value (the
    spec holds references only)."""
    out = {FLEET_FILE: _dump(fleet.spec.model_dump(mode="json", exclude_defaults=True))}
    for name in sorted(fleet.repos):
        repo = fleet.repos[name].model_dump(
            mode="json", exclude_defaults=True, exclude=_REPO_PRIVATE
        )
        out[f"{REPOS_DIR}/{name}.yaml"] = _dump(repo)
    return out


def command(
    upstream: str,
    *,
    users_file: str,
    public_url: str | None,
    fleet_dir: str = FLEET_DIR,
) -> list[str]:
    """`dagfleet frontdoor serve ...`, listening on every address of its container."""
    args = [
        "dagfleet",
        "frontdoor",
        "serve",
        "--fleet",
        fleet_dir,
        "--host",
        "0.0.0.0",
        "--port",
        str(FRONTDOOR_PORT),
        "--upstream",
        upstream,
        "--users-file",
        users_file,
    ]
    if public_url:
        args += ["--public-url", public_url]
    return args
