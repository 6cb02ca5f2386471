"""The API's settings, built once at start-up from flags and environment, and the bind check.

Tokens come from `DAGFLEET_API_TOKENS` (`tok1:admin,tok2:read`) or the file
named by `DAGFLEET_API_TOKEN_FILE` (one `token role` per line); the webhook
secret from `DAGFLEET_WEBHOOK_SECRET` or the file named by
`DAGFLEET_WEBHOOK_SECRET_FILE`.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from dagfleet.control import StartRefused

Role = Literal["read", "admin"]
ROLES: tuple[Role, ...] = ("read", "admin")
MAX_BODY_BYTES = 1024 * 1024
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 3030


class SettingsError(StartRefused):
    """The API cannot start with these settings; the message says what to change."""


@dataclass(frozen=True)
class ApiSettings:
    """Everything the API needs besides the controller; immutable once built."""

    fleet_dir: Path
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    tokens: Mapping[str, Role] = field(default_factory=dict)
    webhook_secret: str | None = None
    max_body_bytes: int = MAX_BODY_BYTES
    # /locations is read by dashboards in a tight loop; statuses are re-read at most this often
    # (every API write invalidates at once).
    status_cache_seconds: float = 0.25
    # None follows logs until the client goes away; tests and fuzzers bound it.
    follow_max_seconds: float | None = None
    follow_poll_seconds: float = 0.2

    @classmethod
    def from_env(
        cls,
        fleet_dir: Path,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        environ: Mapping[str, str] | None = None,
    ) -> ApiSettings:
        env = os.environ if environ is None else environ
        return cls(
            fleet_dir=fleet_dir,
            host=host,
            port=port,
            tokens=load_tokens(env),
            webhook_secret=load_webhook_secret(env),
        )


def parse_tokens(text: str, source: str, line_sep: bool) -> dict[str, Role]:
    """`tok:role,tok:role` (env) or `token role` lines (file); '#' starts a comment line."""
    out: dict[str, Role] = {}
    items = text.splitlines() if line_sep else text.split(",")
    for number, item in enumerate(items, start=1):
        item = item.strip()
        if not item or item.startswith("#"):
            continue
        token, _, role = item.partition(" ") if line_sep else item.rpartition(":")
        token, role = token.strip(), role.strip()
        where = f"{source} line {number}" if line_sep else f"{source} entry {number}"
        if not token or role not in ROLES:
            raise SettingsError(
                f"{where}: expected "
                + ("'TOKEN ROLE'" if line_sep else "'TOKEN:ROLE'")
                + f" with ROLE one of {', '.join(ROLES)}"
            )
        out[token] = role
    return out


def load_tokens(env: Mapping[str, str]) -> dict[str, Role]:
    tokens: dict[str, Role] = {}
    if env.get("DAGFLEET_API_TOKENS"):
        tokens.update(parse_tokens(env["DAGFLEET_API_TOKENS"], "DAGFLEET_API_TOKENS", False))
    if env.get("DAGFLEET_API_TOKEN_FILE"):
        path = Path(env["DAGFLEET_API_TOKEN_FILE"])
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise SettingsError(f"DAGFLEET_API_TOKEN_FILE: cannot read {path}: {exc}") from None
        tokens.update(parse_tokens(text, str(path), True))
    return tokens


def load_webhook_secret(env: Mapping[str, str]) -> str | None:
    if env.get("DAGFLEET_WEBHOOK_SECRET"):
        return env["DAGFLEET_WEBHOOK_SECRET"]
    if env.get("DAGFLEET_WEBHOOK_SECRET_FILE"):
        path = Path(env["DAGFLEET_WEBHOOK_SECRET_FILE"])
        try:
            secret = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise SettingsError(
                f"DAGFLEET_WEBHOOK_SECRET_FILE: cannot read {path}: {exc}"
            ) from None
        if not secret:
            raise SettingsError(f"DAGFLEET_WEBHOOK_SECRET_FILE: {path} is empty")
        return secret
    return None


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, tokens: Mapping[str, Role]) -> str | None:
    """None if serving on `host` is safe, else the refusal to print.

    Without tokens anyone who reaches the port can change the fleet, so only
    loopback is allowed.
    """
    if tokens or is_loopback(host):
        return None
    return (
        f"refusing to serve the dagfleet API on {host} without authentication: set "
        "DAGFLEET_API_TOKENS (e.g. 'secret1:admin,secret2:read') or DAGFLEET_API_TOKEN_FILE, "
        "or bind to 127.0.0.1"
    )
