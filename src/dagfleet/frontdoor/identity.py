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
from dagfleet.frontdoor.sessions import Session
from dagfleet.frontdoor.tokens import token_name, token_role
from dagfleet.frontdoor.users import UsersFile, UsersFileError
from dagfleet.spec import Fleet
from dagfleet.spec.auth import AuthSpec

log = logging.getLogger(__name__)
LOCAL = Principal("local", "loopback", (Grant("admin"),))


@dataclass
class Identities:
    """Every way of being someone here, read from the fleet and the environment."""

    fleet: Callable[[], Fleet]
    users: UsersFile
    tokens: Mapping[str, str]
    oidc_enabled: bool
    _users_cache: tuple[float, dict[str, str]] = (0.0, {})
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
        except UsersFileError as exc:
            log.error("%s: nobody can sign in with a password until it is fixed", exc)
            users = {}
        self._users_cache = (time.monotonic(), users)
        return users

    def configured(self) -> bool:
        """Whether anyone must say who they are (users, single sign-on or tokens)."""
        return bool(self.tokens) or self.oidc_enabled or bool(self.user_hashes())

    def from_token(self, token: str) -> Principal | None:
        role = token_role(self.tokens, token)  # type: ignore[arg-type]
        if role is None:
            return None
        return Principal(token_name(token), "token", (Grant(role),))

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
