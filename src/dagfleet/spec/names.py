"""Validation of names, refs, URLs and paths: pure functions returning an error or None."""

from __future__ import annotations

import functools
import keyword
import os
import re
import subprocess
from urllib.parse import urlsplit

# A Kubernetes object name is a DNS-1123 label (63 chars). Locations are rendered as
# `<repo>-<env>` objects (and `<fleet>-<env>` namespaces), so both parts must leave room.
MAX_LABEL = 63
MAX_REPO_NAME = 40
MAX_ENV_NAME = 12
MAX_FLEET_NAME = 40

# RFC 1035 labels, not just RFC 1123: a Kubernetes Service name must start with a letter.
_REPO_NAME = re.compile(r"^[a-z]([a-z0-9-]*[a-z0-9])?$")
# Environments keep their case (seed 000 calls them A and B); renderers lower-case them.
_ENV_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?$")
_ENV_VAR = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SHA = re.compile(r"^[0-9a-f]{7,40}$")
_URL_SCHEMES = ("https://", "http://", "ssh://", "file://", "git://")
_SCP_LIKE = re.compile(r"^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[^\s]+$")


def check_repo_name(name: str) -> str | None:
    if not _REPO_NAME.match(name):
        return (
            f"{name!r} is not a valid repo name: use lowercase letters, digits and '-', "
            "starting with a letter and ending with a letter or digit"
        )
    if len(name) > MAX_REPO_NAME:
        return f"{name!r} is {len(name)} characters long: use at most {MAX_REPO_NAME}"
    return None


def check_env_name(name: str) -> str | None:
    if not _ENV_NAME.match(name):
        return (
            f"{name!r} is not a valid environment name: use letters, digits and '-', "
            "starting and ending with a letter or digit"
        )
    if len(name) > MAX_ENV_NAME:
        return f"{name!r} is {len(name)} characters long: use at most {MAX_ENV_NAME}"
    return None


def check_fleet_name(name: str) -> str | None:
    if not _REPO_NAME.match(name):
        return (
            f"{name!r} is not a valid fleet name: use lowercase letters, digits and '-', "
            "starting with a letter and ending with a letter or digit"
        )
    if len(name) > MAX_FLEET_NAME:
        return f"{name!r} is {len(name)} characters long: use at most {MAX_FLEET_NAME}"
    return None


def check_env_var_name(name: str) -> str | None:
    if not _ENV_VAR.match(name):
        return f"{name!r} is not a valid environment variable name: use [A-Za-z_][A-Za-z0-9_]*"
    return None


def check_git_ref(ref: str) -> str | None:
    """A branch or tag name as `git check-ref-format --branch` accepts it, never an option."""
    if not ref or ref.startswith("-"):
        return f"{ref!r} is not a valid git ref: it must not be empty or start with '-'"
    if "\0" in ref or "@{" in ref or any(c.isspace() for c in ref) or not _ref_format_ok(ref):
        return f"{ref!r} is not a valid git ref"
    return None


def check_pin(pin: str) -> str | None:
    """A pin is a commit SHA (7-40 hex digits) or a tag name."""
    if _SHA.match(pin):
        return None
    return check_git_ref(pin)


@functools.lru_cache(maxsize=4096)
def _ref_format_ok(ref: str) -> bool:
    # git's own rules are intricate (.lock suffixes, '..', '@{', control chars); ask git,
    # once per ref: every poll of every location checks its branch.
    # Outside any repository: inside one, git expands @{-1} to the previous branch.
    result = subprocess.run(
        ["git", "check-ref-format", "--branch", ref],
        capture_output=True,
        check=False,
        cwd="/",
        env={"PATH": os.environ.get("PATH", ""), "GIT_CEILING_DIRECTORIES": "/"},
    )
    return result.returncode == 0


def check_git_url(url: str) -> str | None:
    """Local paths, file://, http(s)://, ssh:// and scp-style URLs; never ext:: or options."""
    if not url:
        return "the git URL is empty: give a path, file://, https:// or ssh URL"
    if url.startswith("-"):
        return f"{url!r} is not a valid git URL: it must not start with '-'"
    if "\0" in url or "\n" in url:
        return "the git URL contains a control character"
    if "::" in url.split("/", 1)[0] or url.lower().startswith("ext::"):
        return (
            f"{url!r} uses a git remote helper transport (like ext::), which can run "
            "commands: use a path, file://, https:// or ssh URL"
        )
    if url.startswith(_URL_SCHEMES):
        host = urlsplit(url).netloc.rpartition("@")[2]
        if host.startswith("-") or "%" in host:
            # ssh would read `-oProxyCommand=...` as an option (git refuses it too).
            return f"{url!r} has a host starting with '-' or escaped: give the server's name"
        return None
    if url.startswith("/") or _SCP_LIKE.match(url):
        host = url.split(":", 1)[0].rpartition("@")[2]
        if host.startswith("-"):
            return f"{url!r} has a host starting with '-': give the server's name"
        return None
    return f"{url!r} is not a supported git URL: use an absolute path, file://, https:// or ssh URL"


def check_relative_path(path: str) -> str | None:
    """A path inside a checkout: relative, no '..', no NUL, no leading '-'."""
    if not path:
        return "the path is empty"
    if "\0" in path:
        return "the path contains a NUL byte"
    if path.startswith("/"):
        return f"{path!r} is absolute: give a path relative to the repository root"
    if path.startswith("-"):
        return f"{path!r} must not start with '-'"
    if any(part == ".." for part in path.replace("\\", "/").split("/")):
        return f"{path!r} leaves the repository: remove '..'"
    return None


def check_secret_file(path: str) -> str | None:
    """A `from_file` secret reference: a file relative to the fleet root, or an absolute
    path where an operator mounts secrets (/run/secrets/x); never '..', NUL or a leading '-'.
    """
    if not path:
        return "the path is empty: give a file relative to the fleet root or an absolute path"
    if "\0" in path:
        return "the path contains a NUL byte"
    if any(ord(c) < 32 for c in path):
        return f"{path!r} contains a control character"
    if path.startswith("-"):
        return f"{path!r} must not start with '-': write ./{path} for a file in the fleet root"
    if any(part == ".." for part in path.replace("\\", "/").split("/")):
        return (
            f"{path!r} contains '..': give a path under the fleet root, or the absolute path "
            "of the mounted secret (e.g. /run/secrets/db-password)"
        )
    return None


_PREFIX_SEGMENT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]*$")
# `<root>/<env>/` holds these beside the repos' prefixes (seed 004's layout).
RESERVED_PREFIXES = ("shared", "system", "temp")


def normalize_prefix(prefix: str) -> str:
    """`repos//sales/` -> `repos/sales`: the form prefixes are compared and joined in."""
    return "/".join(part for part in prefix.split("/") if part)


def check_storage_prefix(prefix: str) -> str | None:
    """A repo's storage prefix under `<root>/<env>/`: plain relative segments only."""
    parts = normalize_prefix(prefix).split("/")
    if parts == [""]:
        return "the prefix is empty: remove the key to use repos/<name>"
    if prefix.startswith("/"):
        return f"{prefix!r} is absolute: give a prefix relative to <root>/<env>/, e.g. repos/sales"
    if "\0" in prefix:
        return "the path contains a NUL byte"
    for part in parts:
        if part in (".", ".."):
            return f"{prefix!r} contains {part!r}: give a plain path such as repos/sales"
        if not _PREFIX_SEGMENT.match(part):
            return (
                f"{prefix!r}: segment {part!r} may hold only letters, digits, '.', '_' and '-' "
                "and must not start with '.' or '-'"
            )
    if parts[0] in RESERVED_PREFIXES:
        return f"{prefix!r} is inside <env>/{parts[0]}/, which dagfleet reserves: use repos/<name>"
    return None


def prefixes_overlap(a: str, b: str) -> bool:
    """Whether one normalized prefix equals or contains the other."""
    return a == b or a.startswith(b + "/") or b.startswith(a + "/")


def check_module_name(name: str) -> str | None:
    if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$", name):
        return f"{name!r} is not a valid Python module name"
    return None


def check_attribute(name: str) -> str | None:
    """Dagster's `-a`: the name of a variable (Definitions or repository) in the target."""
    if not name.isidentifier() or keyword.iskeyword(name):
        return (
            f"{name!r} is not a valid attribute: give the name of a Python variable "
            "in the loaded module, e.g. defs"
        )
    return None


_REQUIREMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(\[[A-Za-z0-9._,\s-]*\])?\s*[^\n]*$")


def check_requirement(line: str) -> str | None:
    """One PEP 508 requirement line (uv constraints/overrides): a name, then specifiers."""
    if not line.strip() or line.lstrip().startswith("-") or "\n" in line or "\0" in line:
        return f"{line!r} is not a requirement: give one like 'grpcio<1.70' or 'pandas==2.2.3'"
    if not _REQUIREMENT.match(line.strip()):
        return f"{line!r} is not a requirement: give one like 'grpcio<1.70' or 'pandas==2.2.3'"
    return None
