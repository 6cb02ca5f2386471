"""The API's settings, built once at start-up from flags and environment, and the bind check.

Tokens come from `DAGFLEET_API_TOKENS` (`tok1:admin,tok2:read`) or the file
named by `DAGFLEET_API_TOKEN_FILE` (one `token role` per line); the webhook
secret from `DAGFLEET_WEBHOOK_SECRET` or the file named by
`DAGFLEET_WEBHOOK_SECRET_FILE`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from dagfleet.control import StartRefused
from dagfleet.frontdoor import tokens as token_lists
from dagfleet.frontdoor.serve import is_loopback
from dagfleet.spec.auth import RoleName

if TYPE_CHECKING:
    from dagfleet.frontdoor.identity import Keeper

Role = RoleName  # viewer, launcher, editor, admin (and `read`, meaning viewer, in token lists)
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
    tokens: Mapping[str, str] = field(default_factory=dict)  # token -> role
    # Who is who (users, sessions, tokens); `dagfleet up` passes the front door's, so both
    # doors share sessions. None: built from these settings and the fleet's files.
    keeper: Keeper | None = None
    local_token: str | None = None  # `.dagfleet/api.token`, the CLI on this machine
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
            local_token=None,
            webhook_secret=load_webhook_secret(env),
        )


def parse_tokens(text: str, source: str, line_sep: bool) -> dict[str, Role]:
    try:
        return token_lists.parse_tokens(text, source, line_sep)
    except token_lists.TokenError as exc:
        raise SettingsError(str(exc)) from None


def load_tokens(env: Mapping[str, str]) -> dict[str, Role]:
    try:
        return token_lists.load_tokens(env)
    except token_lists.TokenError as exc:
        raise SettingsError(str(exc)) from None


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


def check_bind(host: str, tokens: Mapping[str, str]) -> str | None:
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
