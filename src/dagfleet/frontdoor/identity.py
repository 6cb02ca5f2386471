"""Who is at the door: a bearer token, a session cookie, or (with no identity
configured, on loopback only) the local user, who is admin.

Grants are worked out from the fleet's current `auth:` at each request, so an
edited fleet.yaml or a removed user applies without restarting anything.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from dagfleet.frontdoor.roles import Grant, Principal, Target, grants_for
from dagfleet.frontdoor.sessions import Session, SessionCodec
from dagfleet.frontdoor.tokens import ALIASES, token_name, token_role
from dagfleet.frontdoor.users import UsersFile, UsersFileError
from dagfleet.spec import Fleet
from dagfleet.spec.auth import ROLE_NAMES, AuthSpec

log = logging.getLogger(__name__)
LOCAL = Principal("local", "loopback", (Grant("admin"),))


@dataclass
class Identities:
    """Every way of being someone here, read from the fleet and the environment."""

    fleet: Callable[[], Fleet]
    users: UsersFile
    tokens: Mapping[str, str]
    oidc_enabled: bool
    # `.dagfleet/api.token`, written by `dagfleet up` for the CLI on this machine: whoever
    # can read the fleet's state directory is its admin. Not an identity "configured".
    local_token: str | None = None
    _users_cache: tuple[float, dict[str, str]] = (0.0, {})
    _users_broken: bool = False  # the users file exists but cannot be read: fail closed
    _targets: tuple[object, dict[str, Target]] = (None, {})

    @property
    def auth(self) -> AuthSpec:
        return self.fleet().spec.auth

    def user_hashes(self) -> dict[str, str]:
        """The users file, re-read at most once a second."""
        at, users = self._users_cache
        if time.monotonic() - at < 1.0:
            return users
        try:
            users = self.users.read()
            self._users_broken = False
        except UsersFileError as exc:
            log.error("%s: nobody can sign in with a password until it is fixed", exc)
            users = {}
            self._users_broken = True
        self._users_cache = (time.monotonic(), users)
        return users

    def configured(self) -> bool:
        """Whether anyone must say who they are (users, single sign-on or tokens)."""
        users = self.user_hashes()
        # A users file that cannot be read still means sign-in is wanted: never open the door.
        return bool(self.tokens) or self.oidc_enabled or bool(users) or self._users_broken

    def from_token(self, token: str) -> Principal | None:
        if self.local_token and token_role({self.local_token: "admin"}, token):
            return Principal("local-cli", "token", (Grant("admin"),))
        role = token_role(self.tokens, token)
        if role is None:
            return None
        named = ALIASES.get(role) or role
        if named not in ROLE_NAMES:
            log.error("API token %s: unknown role %r", token_name(token), role)
            return None
        return Principal(token_name(token), "token", (Grant(named),))

    def from_session(self, session: Session) -> Principal | None:
        if session.via == "password" and session.name not in self.user_hashes():
            return None  # removed from the users file: the session ends
        if session.via == "oidc" and not self.oidc_enabled:
            return None
        groups = frozenset(session.groups)
        grants = grants_for(self.auth, session.name, groups)
        return Principal(session.name, session.via, grants, groups)

    def target(self, location: str) -> Target:
        fleet = self.fleet()
        seen, targets = self._targets
        if seen is not fleet:  # a new fleet object: the registry changed
            targets = {loc.name: Target(loc.name, loc.repo, loc.env) for loc in fleet.locations()}
            self._targets = (fleet, targets)
        return targets.get(location) or Target(location)


@dataclass
class Keeper:
    """The one answer to "who is this?" for the front door and the API alike."""

    identities: Identities
    codec: SessionCodec
    loopback: bool  # listening on loopback only

    def open_door(self) -> bool:
        """No identity configured and loopback only: everyone here is the local admin."""
        return self.loopback and not self.identities.configured()

    def who(
        self, authorization: str, session_cookie: str | None
    ) -> tuple[Principal | None, Session | None]:
        if authorization[:7].lower() == "bearer ":
            return self.identities.from_token(authorization[7:].strip()), None
        session = self.codec.read(session_cookie)
        if session is not None:
            principal = self.identities.from_session(session)
            if principal is not None:
                return principal, session
        if self.open_door():
            return LOCAL, None
        return None, None
