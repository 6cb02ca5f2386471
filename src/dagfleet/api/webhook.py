"""Git push webhooks from GitHub, GitLab and Gitea: verify, match a repo and branch, sync.

GitHub signs the raw body with HMAC-SHA256 (`X-Hub-Signature-256: sha256=<hex>`),
Gitea the same without the prefix (`X-Gitea-Signature`), and GitLab sends the
shared secret itself (`X-Gitlab-Token`). Every comparison is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dagfleet.gitops.urls import same_url
from dagfleet.spec import RepoSpec


class BadSignature(Exception):
    """The delivery cannot be trusted; the API answers 401."""


@dataclass(frozen=True)
class Push:
    provider: str
    event: str
    urls: list[str]
    branch: str | None


def _hmac_hex(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(headers: Mapping[str, str], body: bytes, secret: str | None) -> str:
    """The provider whose signature checks out; raises BadSignature otherwise."""
    if not secret:
        raise BadSignature(
            "webhooks are disabled: set DAGFLEET_WEBHOOK_SECRET or DAGFLEET_WEBHOOK_SECRET_FILE"
        )
    github = headers.get("x-hub-signature-256")
    gitea = headers.get("x-gitea-signature")
    gitlab = headers.get("x-gitlab-token")
    if github is not None:
        expected = "sha256=" + _hmac_hex(secret, body)
        if hmac.compare_digest(github.strip().encode(), expected.encode()):
            return "gitea" if "x-gitea-event" in headers else "github"
    elif gitea is not None:
        if hmac.compare_digest(gitea.strip().encode(), _hmac_hex(secret, body).encode()):
            return "gitea"
    elif gitlab is not None:
        if hmac.compare_digest(gitlab.encode(), secret.encode()):
            return "gitlab"
    else:
        raise BadSignature(
            "missing signature: expected X-Hub-Signature-256, X-Gitea-Signature or X-Gitlab-Token"
        )
    raise BadSignature("bad webhook signature")


def _strings(obj: Any, keys: tuple[str, ...]) -> list[str]:
    if not isinstance(obj, dict):
        return []
    return [obj[k] for k in keys if isinstance(obj.get(k), str) and obj[k]]


def parse_push(provider: str, headers: Mapping[str, str], body: bytes) -> Push:
    """The clone URLs and branch of a push event; event is '' when the body is not JSON."""
    event = (
        headers.get("x-github-event")
        or headers.get("x-gitea-event")
        or headers.get("x-gitlab-event")
        or ""
    )
    try:
        payload = json.loads(body or b"{}")
    except ValueError:
        return Push(provider, event, [], None)
    if not isinstance(payload, dict):
        return Push(provider, event, [], None)
    urls = _strings(
        payload.get("repository"),
        ("clone_url", "ssh_url", "git_url", "html_url", "git_http_url", "git_ssh_url", "url"),
    ) + _strings(
        payload.get("project"), ("git_http_url", "git_ssh_url", "http_url", "ssh_url", "web_url")
    )
    ref = payload.get("ref")
    branch = None
    if isinstance(ref, str) and ref.startswith("refs/heads/"):
        branch = ref.removeprefix("refs/heads/")
    return Push(provider, event, urls, branch)


def is_push(push: Push) -> bool:
    return push.event.lower() in ("push", "push hook", "")


def matching_repos(push: Push, repos: list[RepoSpec]) -> list[RepoSpec]:
    return [r for r in repos if any(same_url(r.git_url, u) for u in push.urls)]
