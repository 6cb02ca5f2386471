"""Comparing git remote URLs the way a person would: one repo, many spellings."""

from __future__ import annotations


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
