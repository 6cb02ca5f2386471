"""Who may use the fleet's front door (`auth:` in fleet.yaml), and with which role.

    auth:
      users_file: .dagfleet/users   # the default; `dagfleet user add NAME` writes it
      session_hours: 12
      oidc:
        issuer: https://sso.example.com
        client_id: dagfleet
        client_secret: {from_env: DAGFLEET_OIDC_SECRET}
        groups_claim: groups
      roles:
        - {role: admin, users: [alice], groups: [platform]}
        - {role: launcher, groups: [analytics], environments: [A]}
        - {role: viewer, groups: [analytics], environments: [B]}
        - {role: editor, users: [bob], repositories: [sales], locations: ["sales-*"]}

Roles, weakest first: viewer (look), launcher (launch, re-execute, backfill),
editor (terminate, wipe, schedules and sensors, reload), admin (everything,
instance-wide). A grant without environments/repositories/locations is
fleet-wide; with them it covers the locations matching every field given.
Secrets (the OIDC client secret) are references, never values. API tokens stay
in DAGFLEET_API_TOKENS / DAGFLEET_API_TOKEN_FILE (fleet-wide roles).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from dagfleet.spec.credentials import SecretRef

RoleName = Literal["viewer", "launcher", "editor", "admin"]
ROLE_NAMES: tuple[RoleName, ...] = ("viewer", "launcher", "editor", "admin")
Subject = Annotated[str, Field(min_length=1, max_length=256, pattern=r"^[^\s:]+$")]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RoleGrant(_Model):
    """One role for some users and groups, fleet-wide or scoped."""

    role: RoleName
    users: list[Subject] = Field(default_factory=list)
    groups: list[Subject] = Field(default_factory=list)
    environments: list[str] | None = None
    repositories: list[str] | None = None
    locations: list[str] | None = Field(
        default=None, description="Location-name patterns (fnmatch), e.g. 'sales-*'."
    )

    @model_validator(mode="after")
    def _someone(self) -> RoleGrant:
        if not self.users and not self.groups:
            raise ValueError(
                f"role {self.role!r} is granted to nobody: add users: [name] or groups: [group]"
            )
        return self


class OidcSpec(_Model):
    """Single sign-on: the authorization code flow with PKCE against one issuer."""

    issuer: str
    client_id: str
    client_secret: SecretRef | None = None  # public clients (PKCE only) have none
    scopes: list[str] = Field(default_factory=lambda: ["openid", "profile", "email"])
    groups_claim: str = "groups"
    username_claim: str = "preferred_username"
    redirect_url: str | None = Field(
        default=None,
        description="Where the provider sends users back; default: the front door's "
        "/auth/oidc/callback on the address it serves.",
    )

    @field_validator("issuer")
    @classmethod
    def _https(cls, v: str) -> str:
        if not v.startswith(("https://", "http://")):
            raise ValueError(f"{v!r} is not a URL: give the issuer, e.g. https://sso.example.com")
        return v.rstrip("/")


class AuthSpec(_Model):
    users_file: str = Field(
        default=".dagfleet/users",
        description="Local users, one `name scrypt$...` line each, relative to the fleet "
        "directory; written by `dagfleet user add`.",
    )
    session_hours: Annotated[float, Field(gt=0, le=24 * 30)] = 12
    oidc: OidcSpec | None = None
    roles: list[RoleGrant] = Field(default_factory=list)
