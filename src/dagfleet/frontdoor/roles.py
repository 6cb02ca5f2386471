"""Who may do what where: principals, their grants, and the check. Pure, no I/O.

A principal (a signed-in user, an API token, or loopback access with no identity
configured) holds grants; each grant is a role, fleet-wide or scoped to
environments, repositories and location-name patterns. An action on a location
is allowed when some grant covering that location has a role at least as strong
as the action needs. An action on no location (instance-wide) needs a
fleet-wide grant.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from fnmatch import fnmatchcase

from dagfleet.spec.auth import ROLE_NAMES, AuthSpec, RoleName


class Action(StrEnum):
    VIEW = "view"  # queries, the status page, logs
    LAUNCH = "launch"  # launch, re-execute, backfill
    EDIT = "edit"  # terminate, wipe, schedules/sensors on and off, reload
    ADMIN = "admin"  # instance-wide and fleet changes


NEEDS: Mapping[Action, RoleName] = {
    Action.VIEW: "viewer",
    Action.LAUNCH: "launcher",
    Action.EDIT: "editor",
    Action.ADMIN: "admin",
}
_RANK = {role: rank for rank, role in enumerate(ROLE_NAMES)}


@dataclass(frozen=True)
class Target:
    """A code location as the check sees it: its name, repository and environment.

    Repository and environment are None for a location dagfleet does not know
    (only location-pattern grants can cover it).
    """

    location: str
    repository: str | None = None
    environment: str | None = None


@dataclass(frozen=True)
class Grant:
    role: RoleName
    environments: frozenset[str] | None = None
    repositories: frozenset[str] | None = None
    locations: tuple[str, ...] | None = None

    @property
    def fleet_wide(self) -> bool:
        return self.environments is None and self.repositories is None and self.locations is None

    def covers(self, target: Target | None) -> bool:
        if target is None:
            return self.fleet_wide
        if self.environments is not None and target.environment not in self.environments:
            return False
        if self.repositories is not None and target.repository not in self.repositories:
            return False
        return self.locations is None or any(
            fnmatchcase(target.location, p) for p in self.locations
        )

    def describe(self) -> str:
        scope = []
        if self.environments is not None:
            scope.append("environments " + ",".join(sorted(self.environments)))
        if self.repositories is not None:
            scope.append("repositories " + ",".join(sorted(self.repositories)))
        if self.locations is not None:
            scope.append("locations " + ",".join(self.locations))
        return f"{self.role} in " + "; ".join(scope) if scope else f"{self.role} fleet-wide"


@dataclass(frozen=True)
class Principal:
    """Someone at the door. `via`: password, token, oidc or loopback."""

    name: str
    via: str
    grants: tuple[Grant, ...] = ()
    groups: frozenset[str] = field(default_factory=frozenset)

    def may(self, action: Action, target: Target | None = None) -> bool:
        need = _RANK[NEEDS[action]]
        return any(_RANK[g.role] >= need and g.covers(target) for g in self.grants)

    def may_anywhere(self, action: Action) -> bool:
        """Whether some grant allows `action` on some location (e.g. to open the UI at all)."""
        need = _RANK[NEEDS[action]]
        return any(_RANK[g.role] >= need for g in self.grants)

    def strongest(self) -> RoleName | None:
        if not self.grants:
            return None
        return max((g.role for g in self.grants), key=lambda role: _RANK[role])


def fleet_wide(role: RoleName) -> Grant:
    return Grant(role)


def grants_for(auth: AuthSpec, user: str, groups: Iterable[str] = ()) -> tuple[Grant, ...]:
    """The grants fleet.yaml's `auth.roles` gives this user (by name or any group)."""
    member = set(groups)
    out = []
    for g in auth.roles:
        if user in g.users or member.intersection(g.groups):
            out.append(
                Grant(
                    g.role,
                    None if g.environments is None else frozenset(g.environments),
                    None if g.repositories is None else frozenset(g.repositories),
                    None if g.locations is None else tuple(g.locations),
                )
            )
    return tuple(out)


def denial(principal: Principal, action: Action, target: Target | None) -> str:
    """The message for a refused action: who, what, where, and what would allow it."""
    where = f"in location {target.location}" if target is not None else "fleet-wide"
    held = ", ".join(g.describe() for g in principal.grants) or "no role"
    return (
        f"{principal.name} may not {action.value} {where}: that needs the "
        f"{NEEDS[action]} role there (held: {held}); ask an admin to grant it in "
        "fleet.yaml auth.roles"
    )
