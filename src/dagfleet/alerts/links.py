"""Links in alert messages: a run and a location in the Dagster UI, a commit on its web host."""

from __future__ import annotations

import re
from urllib.parse import quote, urlsplit

KNOWN_HOSTS = {
    "github.com": "{base}/commit/{sha}",
    "gitlab.com": "{base}/-/commit/{sha}",
    "bitbucket.org": "{base}/commits/{sha}",
}
_SCP = re.compile(r"^(?:[\w.-]+@)?(?P<host>[\w.-]+):(?P<path>[^/].*)$")
_OWNER_REPO = re.compile(r"^/[\w.-]+(?:/[\w.-]+)+$")


def _host_path(git_url: str) -> tuple[str, str, str] | None:
    """(scheme, host, path without .git) of a remote, or None for local and odd URLs."""
    if git_url.startswith(("/", "file://")):
        return None
    if "://" not in git_url:
        m = _SCP.match(git_url)
        if not m:
            return None
        return "ssh", m["host"].lower(), "/" + m["path"].removesuffix(".git").strip("/")
    parts = urlsplit(git_url)
    if not parts.hostname:
        return None
    path = parts.path.removesuffix("/").removesuffix(".git")
    return parts.scheme, parts.hostname.lower(), path


def commit_url(git_url: str, sha: str) -> str | None:
    """The commit's web page: github.com, gitlab.com, bitbucket.org (any protocol), or an
    https remote whose path looks like owner/repo (GitHub-style `/commit/<sha>`);
    None otherwise (a file:// or unknown remote: messages show the SHA)."""
    found = _host_path(git_url)
    if found is None:
        return None
    scheme, host, path = found
    if host in KNOWN_HOSTS:
        return KNOWN_HOSTS[host].format(base=f"https://{host}{path}", sha=sha)
    if scheme == "https" and _OWNER_REPO.match(path):
        return f"https://{host}{path}/commit/{sha}"
    return None


def run_url(webserver: str, run_id: str) -> str:
    return f"{webserver.rstrip('/')}/runs/{quote(run_id)}"


def location_url(webserver: str, location: str) -> str:
    return f"{webserver.rstrip('/')}/locations/{quote(location)}"
