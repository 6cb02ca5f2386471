"""Bodies only the REST API has (webhooks, health); the rest are the service's models."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from dagfleet.api.settings import Role


class HookResult(BaseModel):
    """What a webhook delivery did: the locations asked to sync, or why it was ignored.

    `repos` names every registered repo the push concerns (the ones whose locations
    sync, when some do); `repo` is that name when there is exactly one. `replay` is
    true for a delivery already received: nothing is synced a second time.
    """

    accepted: bool
    provider: str
    event: str
    repo: str | None = None
    repos: list[str] = Field(default_factory=list)
    branch: str | None = None
    locations: list[str] = Field(default_factory=list)
    replay: bool = False
    reason: str = ""


class Health(BaseModel):
    status: str
    detail: str = ""
    fleet: str | None = None
    fleet_id: str | None = None


class WhoAmI(BaseModel):
    """The caller: name, strongest role (`none` when it holds none) and every grant;
    `tokens` false means no identity is configured and the API is open (loopback only)."""

    name: str = "local"
    role: Role | Literal["none"]
    grants: list[str] = Field(default_factory=list)
    tokens: bool
