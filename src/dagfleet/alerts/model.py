"""What the alert engine produces and reports: notices, channel and episode status."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from pydantic import BaseModel, Field


class State(StrEnum):
    FIRING = "firing"
    RESOLVED = "resolved"
    INFO = "info"  # promotions: nothing to resolve


@dataclass(frozen=True)
class Notice:
    """One message to send: an episode opening or clearing, or an informational event."""

    episode: str  # "<policy>/<event>/<location>[/<job or schedule or run>]"
    policy: str
    event: str
    state: State
    title: str
    text: str
    location: str = ""
    repo: str = ""
    env: str = ""
    channels: tuple[str, ...] = ()
    links: tuple[tuple[str, str], ...] = ()  # (label, url or plain text such as a SHA)
    fields: tuple[tuple[str, str], ...] = ()
    at: str = ""  # ISO 8601, UTC
    instance: str = ""  # this occurrence of the episode ("<episode>@<n>"): a problem may recur

    @property
    def dedupe_key(self) -> str:
        return f"{self.instance or self.episode}#{self.state}"


@dataclass
class Episode:
    """An open problem: sent once, kept until it resolves."""

    key: str
    policy: str
    event: str
    location: str
    opened: str
    title: str
    channels: tuple[str, ...] = ()
    detail: dict[str, str] = field(default_factory=dict)


class ChannelStatus(BaseModel):
    name: str
    kind: str
    up: bool = Field(description="False while the last delivery attempt failed")
    queued: int = 0
    sent: int = 0
    failures: int = 0
    last_success: str | None = None
    last_error: str | None = None
    last_error_at: str | None = None


class EpisodeOut(BaseModel):
    key: str
    policy: str
    event: str
    location: str
    opened: str
    title: str
    channels: list[str] = Field(default_factory=list)


class AlertsReport(BaseModel):
    """GET /api/v1/alerts: every channel's delivery health and the open episodes."""

    running: bool = Field(description="True while `dagfleet up` runs the alert engine")
    updated: str | None = None
    channels: list[ChannelStatus] = Field(default_factory=list)
    episodes: list[EpisodeOut] = Field(default_factory=list)
