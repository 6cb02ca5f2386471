"""API bearer tokens: `DAGFLEET_API_TOKENS` (`tok:role,tok:role`) or the file named by
`DAGFLEET_API_TOKEN_FILE` (one `token role` per line; '#' starts a comment line).

Roles are the front door's (viewer, launcher, editor, admin), fleet-wide; `read` is
still accepted and means viewer. Tokens are compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from pathlib import Path

from dagfleet.fsutil import atomic_write
from dagfleet.spec.auth import ROLE_NAMES, RoleName

ALIASES: Mapping[str, RoleName] = {"read": "viewer"}


class TokenError(Exception):
    pass


def parse_tokens(text: str, source: str, line_sep: bool) -> dict[str, RoleName]:
    out: dict[str, RoleName] = {}
    items = text.splitlines() if line_sep else text.split(",")
    for number, item in enumerate(items, start=1):
        item = item.strip()
        if not item or item.startswith("#"):
            continue
        token, _, role = item.partition(" ") if line_sep else item.rpartition(":")
        token, role = token.strip(), role.strip()
        where = f"{source} line {number}" if line_sep else f"{source} entry {number}"
        named = ALIASES.get(role, role)
        if not token or named not in ROLE_NAMES:
            raise TokenError(
                f"{where}: expected "
                + ("'TOKEN ROLE'" if line_sep else "'TOKEN:ROLE'")
                + f" with ROLE one of {', '.join(ROLE_NAMES)}"
            )
        out[token] = named
    return out


def load_tokens(env: Mapping[str, str]) -> dict[str, RoleName]:
    tokens: dict[str, RoleName] = {}
    if env.get("DAGFLEET_API_TOKENS"):
        tokens.update(parse_tokens(env["DAGFLEET_API_TOKENS"], "DAGFLEET_API_TOKENS", False))
    if env.get("DAGFLEET_API_TOKEN_FILE"):
        path = Path(env["DAGFLEET_API_TOKEN_FILE"])
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise TokenError(f"DAGFLEET_API_TOKEN_FILE: cannot read {path}: {exc}") from None
        tokens.update(parse_tokens(text, str(path), True))
    return tokens


def token_role(tokens: Mapping[str, str], given: str) -> str | None:
    """The token's role; every known token is compared so timing reveals nothing."""
    found: str | None = None
    raw = given.encode()
    for known, role in tokens.items():
        if hmac.compare_digest(raw, known.encode()):
            found = role
    return found


LOCAL_TOKEN_FILE = "api.token"


def write_local_token(state_dir: Path) -> str:
    """A new admin token for the CLI on this machine, in `.dagfleet/api.token` (0600).

    Whoever can read the fleet's state directory can already change the fleet's
    files; the token lets the same person reach the running API once users or
    single sign-on are configured. A new one at every `dagfleet up`.
    """
    token = secrets.token_urlsafe(32)
    state_dir.mkdir(parents=True, exist_ok=True)
    atomic_write(state_dir / LOCAL_TOKEN_FILE, token + "\n", mode=0o600)
    return token


def read_local_token(state_dir: Path) -> str | None:
    try:
        return (state_dir / LOCAL_TOKEN_FILE).read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def token_name(token: str) -> str:
    """How a token appears in the audit log: never the token, a short digest of it."""
    return "token:" + hashlib.sha256(token.encode()).hexdigest()[:10]
