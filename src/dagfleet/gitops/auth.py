"""A repo's credentials as git sees them: `-c` options and environment variables only.

The repo file holds references (dagfleet.spec.credentials); `resolve` reads them
when git is about to run and returns a `GitAuth`:

* HTTPS token: the user's credential helpers are reset (`credential.helper=`, so
  no `store` helper ever writes the token to disk) and one helper scoped to the
  remote's scheme://host[:port] answers `get` from two environment variables of
  the git process. The token is never in argv, the mirror's config or its URL, and
  a redirect, an `.lfsconfig` or a submodule on another host never receives it.
* SSH deploy key: `GIT_SSH_COMMAND` with `-i KEY -o IdentitiesOnly=yes`, batch mode,
  and the given known_hosts file with strict host key checking.

`GitAuth.scrub` removes secret values from anything shown to a person.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from dagfleet.gitops.errors import GitError
from dagfleet.spec.credentials import GitCredentials, SecretRef

USER_VAR = "DAGFLEET_GIT_USERNAME"
TOKEN_VAR = "DAGFLEET_GIT_TOKEN"
# A shell snippet git runs as `<snippet> get|store|erase`: answer `get` from the
# environment, ignore store/erase. It holds variable names only, never a value.
_HELPER = (
    '!f() { test "$1" = get || exit 0; '
    f'printf "username=%s\\npassword=%s\\n" "${USER_VAR}" "${TOKEN_VAR}"; }}; f'
)
SCRUBBED = "***"


@dataclass(frozen=True)
class GitAuth:
    """What one remote's credentials add to a git command: options, variables, secrets."""

    config: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict, repr=False)
    secrets: tuple[str, ...] = field(default=(), repr=False)

    def scrub(self, text: str) -> str:
        for secret in self.secrets:
            if secret:
                text = text.replace(secret, SCRUBBED)
        return text


def credential_scope(url: str) -> str:
    """scheme://host[:port] of an http(s) URL, without any user or password in it."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:  # an IPv6 literal
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme.lower()}://{host}{port}"


# A path ssh takes as an `-o` value unchanged: anything else is quoted by `_ssh_path`.
_SSH_PLAIN = re.compile(r"^[A-Za-z0-9_./+,:=@-]+$")


def _ssh_path(path: Path) -> str:
    """`path` as the value of an ssh `-o` option: ssh splits such values at whitespace
    (UserKnownHostsFile takes a list), strips quotes and expands %-tokens, so a path with
    a space, quote, backslash or % is double-quoted with those escaped."""
    text = str(path)
    if _SSH_PLAIN.match(text):
        return text
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%")
    return f'"{escaped}"'


def ssh_command(key: Path, known_hosts: Path | None) -> str:
    """The `GIT_SSH_COMMAND` for a deploy key: only that key, no prompts, known hosts checked."""
    # `-i` takes the path as is, except that ssh expands %-tokens in it with no escape.
    identity = ["-i", str(key)] if "%" not in str(key) else ["-o", f"IdentityFile={_ssh_path(key)}"]
    args = ["ssh", *identity, "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes"]
    if known_hosts is not None:
        known = _ssh_path(known_hosts)
        args += ["-o", f"UserKnownHostsFile={known}", "-o", "StrictHostKeyChecking=yes"]
    return shlex.join(args)


def _path(value: str, base: Path) -> Path:
    path = Path(value)
    return path if path.is_absolute() else base / path


def _read(ref: SecretRef, environ: Mapping[str, str], base: Path) -> str:
    if ref.from_env is not None:
        value = environ.get(ref.from_env)
        if not value:
            raise GitError(
                f"credentials.token: from_env {ref.from_env} is not set in dagfleet's "
                "environment: export it before `dagfleet up`"
            )
        return value
    assert ref.from_file is not None
    path = _path(ref.from_file, base)
    try:
        value = path.read_text().strip()
    except OSError as exc:
        raise GitError(f"credentials.token: from_file {path}: {exc.strerror}") from exc
    if not value:
        raise GitError(f"credentials.token: from_file {path} is empty")
    return value


def _existing_file(what: str, value: str, base: Path) -> Path:
    path = _path(value, base)
    if not path.is_file():
        raise GitError(f"credentials.{what}: {path} is not a readable file")
    return path.resolve()


def resolve(
    creds: GitCredentials | None,
    url: str,
    base: Path,
    environ: Mapping[str, str] | None = None,
) -> GitAuth | None:
    """Read the references of `creds` now (relative files against `base`, the fleet root)."""
    if creds is None:
        return None
    environ = os.environ if environ is None else environ
    if creds.token is not None:
        token = _read(creds.token, environ, base)
        scope = credential_scope(url)
        config = ("-c", "credential.helper=", "-c", f"credential.{scope}.helper={_HELPER}")
        env = {USER_VAR: creds.user, TOKEN_VAR: token}
        return GitAuth(config=config, env=env, secrets=(token,))
    assert creds.ssh_key_file is not None
    key = _existing_file("ssh_key_file", creds.ssh_key_file, base)
    known = creds.ssh_known_hosts_file
    known_hosts = _existing_file("ssh_known_hosts_file", known, base) if known else None
    return GitAuth(env={"GIT_SSH_COMMAND": ssh_command(key, known_hosts)})
