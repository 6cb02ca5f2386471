"""Alert policies and channels (`alerts:` in fleet.yaml, `alerts.policies` in repo files).

fleet.yaml names the channels and fleet-wide policies; a repo file may add policies
that apply to that repo's locations only, sending to channels fleet.yaml names:

    alerts:
      webserver_url: https://dagster.example.com   # links in messages (default: the instance)
      channels:
        ops-slack: {slack_webhook: {url: {from_env: SLACK_WEBHOOK_URL}}}
        oncall:
          email: {host: smtp.example.com, from: dagfleet@example.com, to: [oncall@example.com],
                  username: dagfleet, password: {from_file: /run/secrets/smtp}}
      policies:
        - name: prod-broken
          events: [commit_rejected, crash_loop]
          environments: [prod]
          crashes: 3
          minutes: 10
          channels: [ops-slack, oncall]

Secrets (webhook URLs, tokens, passwords, signing secrets) are references, never
values: `{from_env: VAR}` or `{from_file: path}` as for git `credentials`. A literal
is refused at load with the fix. See docs/alerts.md.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from dagfleet.spec.credentials import SecretRef
from dagfleet.spec.errors import SpecProblem

DEFAULT_SLACK_API = "https://slack.com/api"
DEFAULT_RATE_PER_MINUTE = 20
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_EMAIL = re.compile(r"^[^@\s,<>]+@[^@\s,<>]+$")


class AlertEvent(StrEnum):
    RUN_FAILED = "run_failed"
    RUN_CANCELED = "run_canceled"
    RUN_LONGER_THAN = "run_longer_than"  # needs `minutes`
    COMMIT_REJECTED = "commit_rejected"
    NOT_SERVING_TIP = "not_serving_tip"  # needs `minutes`
    CRASH_LOOP = "crash_loop"  # needs `crashes` and `minutes`
    TICK_FAILED = "tick_failed"
    DAEMON_DOWN = "daemon_down"
    PROMOTED = "promoted"


RUN_EVENTS = frozenset({AlertEvent.RUN_FAILED, AlertEvent.RUN_CANCELED, AlertEvent.RUN_LONGER_THAN})
_NEEDS_MINUTES = (AlertEvent.RUN_LONGER_THAN, AlertEvent.NOT_SERVING_TIP, AlertEvent.CRASH_LOOP)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _secret(field: str, example: str) -> Any:
    """A before-validator refusing a literal where a secret reference belongs."""

    def check(value: object) -> object:
        if isinstance(value, str):
            raise ValueError(
                f"a literal secret does not belong in fleet files: give {field}: "
                f"{{from_env: {example}}} (an environment variable of dagfleet's) or "
                f"{{from_file: /run/secrets/...}}"
            )
        return value

    return check


class SlackWebhook(_Model):
    """A Slack incoming webhook; its URL is the secret."""

    url: SecretRef

    _literal = field_validator("url", mode="before")(_secret("url", "SLACK_WEBHOOK_URL"))


class SlackBot(_Model):
    """`chat.postMessage` with a bot token; `channel` defaults to $SLACK_DEFAULT_CHANNEL."""

    token: SecretRef
    channel: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    api_url: Annotated[str, Field(pattern=r"^https?://")] = DEFAULT_SLACK_API

    _literal = field_validator("token", mode="before")(_secret("token", "SLACK_BOT_TOKEN"))


class Webhook(_Model):
    """A JSON POST signed with HMAC-SHA256 of `<timestamp>.<body>` (docs/alerts.md)."""

    url: Annotated[str, Field(pattern=r"^https?://")]
    secret: SecretRef

    _literal = field_validator("secret", mode="before")(_secret("secret", "ALERT_WEBHOOK_SECRET"))


class Email(_Model):
    """Mail over SMTP; STARTTLS unless `starttls: false`, a login when `username` is given."""

    host: Annotated[str, Field(min_length=1)]
    port: Annotated[int, Field(gt=0, lt=65536)] = 587
    sender: Annotated[str, Field(alias="from", pattern=_EMAIL.pattern)]
    to: Annotated[list[Annotated[str, Field(pattern=_EMAIL.pattern)]], Field(min_length=1)]
    username: str | None = None
    password: SecretRef | None = None
    starttls: bool = True

    _literal = field_validator("password", mode="before")(_secret("password", "SMTP_PASSWORD"))

    @model_validator(mode="after")
    def _login(self) -> Email:
        if (self.username is None) != (self.password is None):
            raise ValueError("username and password go together: give both or neither")
        return self


class ChannelSpec(_Model):
    """Where alerts go: exactly one of slack_webhook, slack_bot, webhook or email."""

    slack_webhook: SlackWebhook | None = None
    slack_bot: SlackBot | None = None
    webhook: Webhook | None = None
    email: Email | None = None
    rate_per_minute: Annotated[int, Field(ge=1, le=600)] = DEFAULT_RATE_PER_MINUTE

    @model_validator(mode="after")
    def _one_kind(self) -> ChannelSpec:
        given = [k for k in ("slack_webhook", "slack_bot", "webhook", "email") if getattr(self, k)]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of slack_webhook, slack_bot, webhook or email"
                + (f" (got {', '.join(given)})" if given else "")
            )
        return self

    @property
    def kind(self) -> str:
        for k in ("slack_webhook", "slack_bot", "webhook", "email"):
            if getattr(self, k) is not None:
                return k
        raise AssertionError("validated: one kind")


Pattern = Annotated[str, Field(min_length=1, max_length=200)]


class PolicySpec(_Model):
    """Which events, where (glob patterns; none means everywhere), and to which channels."""

    name: Annotated[str, Field(pattern=_NAME.pattern)]
    events: Annotated[list[str], Field(min_length=1)]
    channels: Annotated[list[str], Field(min_length=1)]
    repos: list[Pattern] = Field(default_factory=list)
    environments: list[Pattern] = Field(default_factory=list)
    locations: list[Pattern] = Field(default_factory=list)
    jobs: list[Pattern] = Field(default_factory=list)
    tags: dict[str, str] = Field(default_factory=dict)
    minutes: Annotated[float, Field(gt=0, le=10080)] | None = None
    crashes: Annotated[int, Field(ge=1, le=1000)] | None = None
    quiet_minutes: Annotated[float, Field(ge=0, le=1440)] = Field(
        default=5.0,
        description="crash_loop: resolved once the server recovered and stayed up this long.",
    )

    @field_validator("events")
    @classmethod
    def _known(cls, v: list[str]) -> list[str]:
        known = {e.value for e in AlertEvent}
        for name in v:
            if name not in known:
                raise ValueError(
                    f"unknown event {name!r}: use one of {', '.join(e.value for e in AlertEvent)}"
                )
        return v

    @model_validator(mode="after")
    def _parameters(self) -> PolicySpec:
        for event in _NEEDS_MINUTES:
            if event.value in self.events and self.minutes is None:
                raise ValueError(f"{event.value} needs `minutes`: add e.g. minutes: 10")
        if AlertEvent.CRASH_LOOP.value in self.events and self.crashes is None:
            raise ValueError("crash_loop needs `crashes` (how many within `minutes`): e.g. 3")
        runs_only = (self.jobs or self.tags) and not RUN_EVENTS & set(self.kinds)
        if runs_only:
            raise ValueError("jobs and tags filter run events only: add a run_* event or drop them")
        return self

    @property
    def kinds(self) -> tuple[AlertEvent, ...]:
        return tuple(AlertEvent(e) for e in self.events)


def _unique_names(v: list[PolicySpec]) -> list[PolicySpec]:
    seen: set[str] = set()
    for p in v:
        if p.name in seen:
            raise ValueError(f"policy {p.name!r} is defined twice: give each its own name")
        seen.add(p.name)
    return v


class AlertsSpec(_Model):
    """fleet.yaml `alerts:` channels and fleet-wide policies."""

    webserver_url: Annotated[str, Field(pattern=r"^https?://")] | None = None
    channels: dict[str, ChannelSpec] = Field(default_factory=dict)
    policies: list[PolicySpec] = Field(default_factory=list)

    @field_validator("channels")
    @classmethod
    def _names(cls, v: dict[str, ChannelSpec]) -> dict[str, ChannelSpec]:
        for name in v:
            if not _NAME.match(name):
                raise ValueError(f"channel name {name!r}: letters, digits, '_', '.', '-'")
        return v

    _policies = field_validator("policies")(_unique_names)

    @model_validator(mode="after")
    def _channels_known(self) -> AlertsSpec:
        for i, policy in enumerate(self.policies):
            unknown = [c for c in policy.channels if c not in self.channels]
            if unknown:
                raise ValueError(_unknown_channels(f"policies[{i}]", unknown, self.channels))
        return self


class RepoAlerts(_Model):
    """A repo file's `alerts:`: policies for this repo's locations, to fleet.yaml's channels."""

    policies: list[PolicySpec] = Field(default_factory=list)

    _policies = field_validator("policies")(_unique_names)


def _unknown_channels(where: str, unknown: list[str], known: Iterable[str]) -> str:
    names = ", ".join(sorted(known)) or "none"
    return (
        f"{where}: unknown channel {', '.join(map(repr, unknown))}: define it under "
        f"alerts.channels in fleet.yaml (known: {names})"
    )


def repo_problems(shown: str, fleet: AlertsSpec, repo: RepoAlerts | None) -> list[SpecProblem]:
    """A repo file's policies that send to channels fleet.yaml does not define."""
    out: list[SpecProblem] = []
    for i, policy in enumerate(repo.policies if repo else []):
        unknown = [c for c in policy.channels if c not in fleet.channels]
        if unknown:
            message = _unknown_channels("", unknown, fleet.channels).removeprefix(": ")
            out.append(SpecProblem(shown, f"alerts.policies[{i}].channels", message))
    return out
