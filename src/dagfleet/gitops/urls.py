"""Git remote URLs: comparing them the way a person would (one repo, many spellings),
and showing them without the credentials a URL can carry."""

from __future__ import annotations

import re

# scheme://user[:password]@ in a URL, anywhere in a text (a URL, a git message).
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)([^/@\s:'\"]*)(:[^/@\s'\"]*)?@")


def _keep(match: re.Match[str]) -> str:
    scheme, user = match.group(1), match.group(2)
    # Over http(s) the user is often the token itself; an ssh user (git@) is not secret.
    if scheme.lower() in ("http://", "https://"):
        return scheme
    return f"{scheme}{user}@"


def hide_credentials(text: str) -> str:
    """`text` with every URL's password removed (and its user too, for http and https)."""
    return _USERINFO.sub(_keep, text)


def normalize(url: str) -> str:
    u = url.strip().rstrip("/").removesuffix(".git").lower()
    for prefix in ("https://", "http://", "ssh://", "git://", "file://"):
        u = u.removeprefix(prefix)
    u = u.split("@", 1)[-1]
    host, sep, path = u.partition("/")
    if ":" in host:
        name, _, rest = host.partition(":")
        if rest.isdigit():  # an explicit port is not part of the repository's name
            host = name
        else:  # scp-style host:path
            host, path, sep = name, f"{rest}/{path}".rstrip("/") if sep else rest, "/"
    return f"{host}{sep}{path}"


def same_url(a: str, b: str) -> bool:
    """True when both URLs name the same repository (https vs ssh, .git, trailing /)."""
    return normalize(a) == normalize(b)
