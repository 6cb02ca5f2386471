"""Notices as messages: Slack text (mrkdwn), the webhook's JSON document, a mail."""

from __future__ import annotations

from email.message import EmailMessage
from typing import Any

from dagfleet.alerts.model import Notice, State

_ICON = {
    State.FIRING: ":red_circle:",
    State.RESOLVED: ":large_green_circle:",
    State.INFO: ":information_source:",
}


def _link(label: str, target: str, slack: bool) -> str:
    if not target.startswith(("http://", "https://")):
        return f"{label}: {target}"
    return f"<{target}|{label}>" if slack else f"{label}: {target}"


def one_text(n: Notice, slack: bool) -> str:
    head = f"{_ICON[n.state]} *{n.title}*" if slack else f"[{n.state.upper()}] {n.title}"
    parts = [head]
    if n.text:
        parts.append(n.text)
    refs = [_link(label, target, slack) for label, target in n.links]
    if refs:
        parts.append(" | ".join(refs) if slack else "\n".join(refs))
    parts.append(f"policy {n.policy}, {n.event}, {n.at}")
    return "\n".join(parts)


def summary_title(batch: list[Notice]) -> str:
    if len(batch) == 1:
        return batch[0].title
    return f"{len(batch)} alerts (rate limit reached; summarised)"


def text(batch: list[Notice], slack: bool) -> str:
    """One message for one notice, or a summary (a line each) for several."""
    if len(batch) == 1:
        return one_text(batch[0], slack)
    lines = [f"*{summary_title(batch)}*" if slack else summary_title(batch)]
    lines += [f"- [{n.state}] {n.title}" for n in batch]
    return "\n".join(lines)


def document(batch: list[Notice]) -> dict[str, Any]:
    """The generic webhook's JSON: {"alerts": [...]}, one entry per notice."""
    return {
        "summary": summary_title(batch),
        "alerts": [
            {
                "episode": n.episode,
                "id": n.instance or n.episode,
                "policy": n.policy,
                "event": n.event,
                "state": str(n.state),
                "title": n.title,
                "text": n.text,
                "location": n.location,
                "repo": n.repo,
                "env": n.env,
                "at": n.at,
                "links": {label: target for label, target in n.links},
                "fields": dict(n.fields),
            }
            for n in batch
        ],
    }


def mail(batch: list[Notice], sender: str, to: list[str]) -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = f"[dagfleet] {summary_title(batch)}"
    msg["From"] = sender
    msg["To"] = ", ".join(to)
    body = "\n\n".join(one_text(n, slack=False) for n in batch)
    msg.set_content(body + "\n")
    return msg
