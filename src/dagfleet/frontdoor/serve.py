"""Building and starting the front door: in `dagfleet up` (a thread beside the
fleet) or alone (`dagfleet frontdoor serve`, the process the renders run).

The bind check lives here: a front door that anyone on the network can reach
must have some identity configured, or it refuses to start and says how.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from dagfleet.audit.writer import AuditWriter
from dagfleet.control import StartRefused
from dagfleet.frontdoor import auditing
from dagfleet.frontdoor.door import OWN_COOKIES, FrontDoor
from dagfleet.frontdoor.gating import GraphQLGate
from dagfleet.frontdoor.identity import Identities, Keeper
from dagfleet.frontdoor.oidc import OidcClient, OidcError
from dagfleet.frontdoor.proxy import HttpForwarder
from dagfleet.frontdoor.sessions import SessionCodec, SessionKeyError, load_key
from dagfleet.frontdoor.tokens import TokenError, load_tokens
from dagfleet.frontdoor.users import UsersFile, users_path
from dagfleet.spec import Fleet, load_fleet
from dagfleet.uvthread import ThreadedServer

log = logging.getLogger(__name__)


class FrontDoorRefused(StartRefused):
    """The front door cannot start like this; the message says what to change."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class DoorSettings:
    fleet_root: Path
    state_dir: Path  # where session.key lives when no key is given
    host: str
    port: int
    upstream: str  # the Dagster webserver, e.g. http://127.0.0.1:41234
    users_file: Path | None = None  # overrides fleet.yaml auth.users_file
    public_url: str | None = None  # https://dagster.example.com behind TLS: Secure cookies


class FleetFiles:
    """The fleet as the files say, re-read when fleet.yaml or a repo file changes."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._stamp: tuple[float, ...] = ()
        self._checked = 0.0
        self._fleet = load_fleet(root)

    def _stamps(self) -> tuple[float, ...]:
        paths = [self.root / "fleet.yaml", self.root / "repos"]
        repos = self.root / "repos"
        if repos.is_dir():
            paths += sorted(repos.iterdir())
        out = []
        for p in paths:
            try:
                out.append(p.stat().st_mtime)
            except OSError:
                out.append(0.0)
        return tuple(out)

    def __call__(self) -> Fleet:
        now = time.monotonic()
        if now - self._checked < 1.0:  # looked at most once a second
            return self._fleet
        self._checked = now
        stamp = self._stamps()
        if stamp != self._stamp:
            try:
                self._fleet = load_fleet(self.root)
                self._stamp = stamp
            except Exception as exc:  # a broken edit keeps the last good fleet
                log.error("front door: keeping the last good fleet: %s", exc)
        return self._fleet


def keeper_for(
    fleet_root: Path,
    state_dir: Path,
    host: str,
    fleet: Callable[[], Fleet],
    environ: Mapping[str, str],
    tokens: Mapping[str, str] | None = None,
    users_file: Path | None = None,
    local_token: str | None = None,
) -> Keeper:
    """Users, tokens, single sign-on and the session key, as the front door and the API
    both see them. Raises FrontDoorRefused on a bad token list or session key."""
    spec = fleet().spec
    try:
        found = load_tokens(environ) if tokens is None else dict(tokens)
        key = load_key(environ, state_dir)
    except (TokenError, SessionKeyError) as exc:
        raise FrontDoorRefused(str(exc)) from None
    users = UsersFile(users_file or users_path(fleet_root, spec.auth.users_file))
    identities = Identities(
        fleet, users, found, oidc_enabled=spec.auth.oidc is not None, local_token=local_token
    )
    return Keeper(identities, SessionCodec(key, spec.auth.session_hours * 3600), is_loopback(host))


def build(
    settings: DoorSettings,
    fleet: Callable[[], Fleet],
    environ: Mapping[str, str] | None = None,
    audit: AuditWriter | None = None,
    local_token: str | None = None,
) -> FrontDoor:
    env = os.environ if environ is None else environ
    spec = fleet().spec
    keeper = keeper_for(
        settings.fleet_root,
        settings.state_dir,
        settings.host,
        fleet,
        env,
        users_file=settings.users_file,
        local_token=local_token,
    )
    if not keeper.loopback and not keeper.identities.configured():
        raise FrontDoorRefused(
            f"refusing to serve the Dagster UI on {settings.host} without sign-in: add a user "
            "with `dagfleet user add NAME` and grant a role in fleet.yaml auth.roles, configure "
            "auth.oidc, or set DAGFLEET_API_TOKENS; or bind to 127.0.0.1"
        )
    oidc = None
    if spec.auth.oidc is not None:
        try:
            oidc = OidcClient.from_spec(spec.auth.oidc, env, settings.fleet_root)
        except OidcError as exc:
            raise FrontDoorRefused(str(exc)) from None
    upstream = settings.upstream.rstrip("/")
    forwarder = HttpForwarder(upstream, OWN_COOKIES)
    secure = (settings.public_url or "").startswith("https://")
    door = FrontDoor(
        keeper=keeper,
        forwarder=forwarder,
        gate=GraphQLGate(upstream, keeper.identities.target),
        upstream_ws="ws" + upstream[len("http") :] + "/graphql",
        fleet_name=spec.name,
        audit=None if audit is None else auditing.sink(audit, keeper.identities.target),
        oidc=oidc,
        secure_cookies=secure,
        public_url=settings.public_url,
    )
    return door


def start(door: FrontDoor, host: str, port: int) -> ThreadedServer:
    server = ThreadedServer(door, host, port, "front door", ws_max_size=64 * 1024 * 1024)
    server.start()
    return server
