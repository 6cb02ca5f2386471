"""One message to one channel: Slack (incoming webhook, bot token), signed webhook, SMTP.

`send` delivers a batch (one notice, or a rate-limit summary of several) as one
message, or raises `DeliveryError`: `permanent` when retrying cannot help (a
revoked token, an unknown channel), else the worker retries with backoff.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import smtplib
import ssl
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

import httpx

from dagfleet.alerts import render
from dagfleet.alerts.model import Notice
from dagfleet.alerts.secrets import SecretUnreadable, read
from dagfleet.spec.alerts import ChannelSpec, Email, SlackBot, SlackWebhook, Webhook

TIMEOUT = httpx.Timeout(10.0, connect=5.0)
SIGNATURE_HEADER = "X-Dagfleet-Signature"
TIMESTAMP_HEADER = "X-Dagfleet-Timestamp"
# Slack answers these when trying again later can work; any other error is permanent.
_SLACK_TRANSIENT = {
    "ratelimited",
    "rate_limited",
    "internal_error",
    "fatal_error",
    "service_unavailable",
    "request_timeout",
}


class _QuietAlertThreads(logging.Filter):
    """httpx logs every request's URL at INFO; a Slack webhook's URL is its secret.
    Requests sent by the alert channels' threads (named `alerts-<channel>`) are not logged
    there: the channel's status and warnings say how delivery went, without URLs."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.threadName or not record.threadName.startswith("alerts-")


_quiet = _QuietAlertThreads()
if _quiet not in logging.getLogger("httpx").filters:
    logging.getLogger("httpx").addFilter(_quiet)


class DeliveryError(Exception):
    def __init__(self, message: str, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class Sender(Protocol):
    def send(self, batch: list[Notice]) -> None: ...
    def close(self) -> None: ...


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The X-Dagfleet-Signature value: sha256=<hex HMAC-SHA256(secret, "<ts>.<body>")>."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def _http_error(resp: httpx.Response, what: str) -> DeliveryError:
    permanent = 400 <= resp.status_code < 500 and resp.status_code not in (408, 429)
    return DeliveryError(f"{what} answered {resp.status_code}: {resp.text[:200]}", permanent)


class _Http:
    def __init__(self, environ: Mapping[str, str], base: Path) -> None:
        self.environ = environ
        self.base = base
        self.http = httpx.Client(timeout=TIMEOUT)

    def secret(self, ref: object, field: str) -> str:
        from dagfleet.spec.credentials import SecretRef

        assert isinstance(ref, SecretRef)
        try:
            return read(ref, field, self.environ, self.base)
        except SecretUnreadable as exc:
            raise DeliveryError(str(exc), permanent=True) from None

    def post(self, url: str, what: str, **kwargs: object) -> httpx.Response:
        try:
            return self.http.post(url, **kwargs)  # type: ignore[arg-type]
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            # The URL may be the secret (Slack webhooks): never in a message.
            detail = str(exc).replace(url, "<url>")
            raise DeliveryError(f"{what}: {type(exc).__name__}: {detail}") from None

    def close(self) -> None:
        self.http.close()


class SlackWebhookSender(_Http):
    def __init__(self, spec: SlackWebhook, environ: Mapping[str, str], base: Path) -> None:
        super().__init__(environ, base)
        self.spec = spec

    def send(self, batch: list[Notice]) -> None:
        url = self.secret(self.spec.url, "slack_webhook.url")
        resp = self.post(url, "slack webhook", json={"text": render.text(batch, slack=True)})
        if resp.status_code != 200:
            raise _http_error(resp, "slack webhook")


class SlackBotSender(_Http):
    def __init__(self, spec: SlackBot, environ: Mapping[str, str], base: Path) -> None:
        super().__init__(environ, base)
        self.spec = spec

    def send(self, batch: list[Notice]) -> None:
        token = self.secret(self.spec.token, "slack_bot.token")
        channel = self.spec.channel or self.environ.get("SLACK_DEFAULT_CHANNEL", "")
        if not channel:
            raise DeliveryError(
                "slack_bot: no channel: set slack_bot.channel or SLACK_DEFAULT_CHANNEL",
                permanent=True,
            )
        url = self.spec.api_url.rstrip("/") + "/chat.postMessage"
        body = {"channel": channel, "text": render.text(batch, slack=True)}
        headers = {"Authorization": f"Bearer {token}"}
        resp = self.post(url, "slack chat.postMessage", json=body, headers=headers)
        if resp.status_code != 200:
            raise _http_error(resp, "slack chat.postMessage")
        try:
            answer = resp.json()
        except ValueError:
            raise DeliveryError("slack chat.postMessage: the answer is not JSON") from None
        if not isinstance(answer, dict) or answer.get("ok") is not True:
            error = str(answer.get("error", "unknown")) if isinstance(answer, dict) else "unknown"
            raise DeliveryError(
                f"slack chat.postMessage: {error}", permanent=error not in _SLACK_TRANSIENT
            )


class WebhookSender(_Http):
    def __init__(self, spec: Webhook, environ: Mapping[str, str], base: Path) -> None:
        super().__init__(environ, base)
        self.spec = spec

    def send(self, batch: list[Notice]) -> None:
        secret = self.secret(self.spec.secret, "webhook.secret")
        body = json.dumps(render.document(batch), separators=(",", ":")).encode()
        stamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: stamp,
            SIGNATURE_HEADER: sign(secret, stamp, body),
        }
        resp = self.post(self.spec.url, f"webhook {self.spec.url}", content=body, headers=headers)
        if resp.status_code >= 300:
            raise _http_error(resp, f"webhook {self.spec.url}")


class EmailSender:
    def __init__(self, spec: Email, environ: Mapping[str, str], base: Path) -> None:
        self.spec = spec
        self.environ = environ
        self.base = base

    def send(self, batch: list[Notice]) -> None:
        spec = self.spec
        password = None
        if spec.password is not None:
            try:
                password = read(spec.password, "email.password", self.environ, self.base)
            except SecretUnreadable as exc:
                raise DeliveryError(str(exc), permanent=True) from None
        message = render.mail(batch, spec.sender, spec.to)
        where = f"smtp {spec.host}:{spec.port}"
        try:
            with smtplib.SMTP(spec.host, spec.port, timeout=10) as smtp:
                if spec.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if spec.username and password:
                    smtp.login(spec.username, password)
                smtp.send_message(message)
        except (smtplib.SMTPAuthenticationError, smtplib.SMTPRecipientsRefused) as exc:
            raise DeliveryError(f"{where}: {exc}", permanent=True) from None
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"{where}: {type(exc).__name__}: {exc}") from None

    def close(self) -> None:
        pass


def make(spec: ChannelSpec, environ: Mapping[str, str], base: Path) -> Sender:
    if spec.slack_webhook is not None:
        return SlackWebhookSender(spec.slack_webhook, environ, base)
    if spec.slack_bot is not None:
        return SlackBotSender(spec.slack_bot, environ, base)
    if spec.webhook is not None:
        return WebhookSender(spec.webhook, environ, base)
    assert spec.email is not None
    return EmailSender(spec.email, environ, base)
