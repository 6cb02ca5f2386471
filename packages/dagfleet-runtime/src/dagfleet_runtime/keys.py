"""Key confinement: the rules that keep a key inside its prefix.

A key is a relative, '/'-separated name. Refused: empty keys, NUL bytes,
absolute paths, backslashes, URLs, and any `..` component. Local paths are
then resolved with symlinks followed, and must still be under the (resolved)
root: a symlink inside the prefix that points out of it is refused too.
"""

from __future__ import annotations

import os
import re

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


class PrefixEscapeError(ValueError):
    """The key would leave the prefix it is confined to."""


def normalize_key(key: str) -> str:
    """The canonical form of `key` (no '.', no empty parts), or PrefixEscapeError."""
    if not isinstance(key, str):
        raise PrefixEscapeError(f"key must be a string, not {type(key).__name__}")
    if "\0" in key:
        raise PrefixEscapeError(f"{key!r}: NUL bytes are not allowed in keys")
    if "\\" in key:
        raise PrefixEscapeError(f"{key!r}: use '/' to separate key parts, not '\\'")
    if key.startswith("/") or key.startswith("~"):
        raise PrefixEscapeError(f"{key!r}: keys are relative to the location's prefix")
    if _SCHEME.match(key):
        raise PrefixEscapeError(f"{key!r}: give a key under the prefix, not a URL or drive")
    parts = [p for p in key.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise PrefixEscapeError(f"{key!r}: '..' would leave the location's prefix")
    if not parts:
        raise PrefixEscapeError(f"{key!r}: empty key")
    return "/".join(parts)


def confine_local(root: str, key: str) -> str:
    """The real path of `root/key`, which must lie under the real path of `root`."""
    clean = normalize_key(key)
    base = os.path.realpath(root)
    path = os.path.realpath(os.path.join(base, *clean.split("/")))
    if os.path.commonpath([base, path]) != base or path == base:
        raise PrefixEscapeError(f"{key!r}: resolves to {path}, outside {base} (symlink?)")
    return path


def confine_remote(root: str, key: str) -> str:
    """`root/key` for object stores, where no symlink exists: the normalized key decides."""
    return f"{root.rstrip('/')}/{normalize_key(key)}"


def is_remote(root: str) -> bool:
    return "://" in root and not root.startswith("file://")
