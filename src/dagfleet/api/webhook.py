"""Git push webhooks from GitHub, GitLab and Gitea: verify, remember, match a repo, sync.

GitHub signs the raw body with HMAC-SHA256 (`X-Hub-Signature-256: sha256=<hex>`),
Gitea the same without the prefix (`X-Gitea-Signature`), and GitLab sends the
shared secret itself (`X-Gitlab-Token`). Every comparison is constant-time. When a
request carries several of these (Gitea sends its own, GitHub's and Gogs'), every
one present must verify: one good signature does not excuse a bad one.

`Deliveries` remembers recent verified deliveries per provider (bounded and
time-limited), by the provider's delivery id and by a digest of the body, since
the id header is not signed: a replay of a signed body under a new id is a replay.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from dagfleet.gitops.urls import normalize, same_url
from dagfleet.spec import RepoSpec

# A delivery seen again within this many seconds is a replay; at most this many
# deliveries are remembered per provider (the oldest are forgotten first).
REPLAY_WINDOW_SECONDS = 600.0
REPLAY_MEMORY = 2048
# The delivery id each provider sends, most specific first (GitLab's Idempotency-Key
# stays the same across its retries; Gitea also sends GitHub's and Gogs' headers).
DELIVERY_HEADERS = {
    "github": ("x-github-delivery",),
    "gitea": ("x-gitea-delivery", "x-gogs-delivery", "x-github-delivery"),
    "gitlab": ("idempotency-key", "x-gitlab-event-uuid"),
}


class BadSignature(Exception):
    """The delivery cannot be trusted; the API answers 401."""


@dataclass(frozen=True)
class Push:
    provider: str
    event: str
    urls: list[str]
    branch: str | None


def _hmac_hex(secret: str, body: bytes, digest: str = "sha256") -> str:
    return hmac.new(secret.encode(), body, digest).hexdigest()


def _same(sent: str, expected: str) -> bool:
    return hmac.compare_digest(sent.strip().encode(), expected.encode())


def verify(headers: Mapping[str, str], body: bytes, secret: str | None) -> str:
    """The provider of a delivery whose every signature checks out; BadSignature otherwise.

    One of X-Hub-Signature-256, X-Gitea-Signature or X-Gitlab-Token must be present;
    each of those present, and X-Gogs-Signature and X-Hub-Signature (SHA-1) when sent
    with them, must verify.
    """
    if not secret:
        raise BadSignature(
            "webhooks are disabled: set DAGFLEET_WEBHOOK_SECRET or DAGFLEET_WEBHOOK_SECRET_FILE"
        )
    sha256 = _hmac_hex(secret, body)
    checks: dict[str, Callable[[str], bool]] = {
        "x-hub-signature-256": lambda sent: _same(sent, "sha256=" + sha256),
        "x-gitea-signature": lambda sent: _same(sent, sha256),
        "x-gitlab-token": lambda sent: hmac.compare_digest(sent.encode(), secret.encode()),
        "x-gogs-signature": lambda sent: _same(sent, sha256),
        "x-hub-signature": lambda sent: _same(sent, "sha1=" + _hmac_hex(secret, body, "sha1")),
    }
    present = [name for name in checks if headers.get(name) is not None]
    if not {"x-hub-signature-256", "x-gitea-signature", "x-gitlab-token"} & set(present):
        raise BadSignature(
            "missing signature: expected X-Hub-Signature-256, X-Gitea-Signature or X-Gitlab-Token"
        )
    # Check them all (no early exit), then refuse if any failed.
    failed = [name for name in present if not checks[name](headers[name])]
    if failed:
        raise BadSignature(f"bad webhook signature in {', '.join(failed)}")
    if "x-gitea-signature" in present or "x-gitea-event" in headers:
        return "gitea"
    return "github" if "x-hub-signature-256" in present else "gitlab"


@dataclass(frozen=True)
class Replay:
    """An earlier sighting of a delivery: what matched and how long ago."""

    what: str
    seconds_ago: float

    def reason(self) -> str:
        return (
            f"replay: {self.what} was received {self.seconds_ago:.0f}s ago; nothing synced "
            "(POST /api/v1/repos/{name}/sync syncs on purpose)"
        )


def delivery_keys(provider: str, headers: Mapping[str, str], body: bytes) -> dict[str, str]:
    """What identifies a delivery: its id (when the provider sent one) and its body."""
    keys = {}
    for name in DELIVERY_HEADERS.get(provider, ()):
        value = headers.get(name, "").strip()
        if value:
            keys[f"id:{value}"] = f"delivery {value[:80]!r}"
            break
    keys["body:" + hashlib.sha256(body).hexdigest()] = "the same signed body"
    return keys


class Deliveries:
    """Recent verified deliveries per provider: bounded, time-limited, thread-safe."""

    def __init__(
        self,
        window: float = REPLAY_WINDOW_SECONDS,
        memory: int = REPLAY_MEMORY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.window, self.memory, self._clock = window, memory, clock
        self._seen: dict[str, OrderedDict[str, float]] = {}
        self._lock = threading.Lock()

    def replayed(self, provider: str, keys: Mapping[str, str]) -> Replay | None:
        """The earlier sighting if any key was seen within the window; else remember them.

        Check and record are one step, so two copies racing in cannot both pass.
        """
        now = self._clock()
        with self._lock:
            seen = self._seen.setdefault(provider, OrderedDict())
            while seen and now - next(iter(seen.values())) > self.window:
                seen.popitem(last=False)
            for key, what in keys.items():
                at = seen.get(key)
                if at is not None:
                    return Replay(what, now - at)
            for key in keys:
                seen[key] = now
                seen.move_to_end(key)
            while len(seen) > self.memory:
                seen.popitem(last=False)
        return None

    def forget(self, provider: str, keys: Mapping[str, str]) -> None:
        """Drop a delivery that was not handled (the sync was refused): a retry must work."""
        with self._lock:
            seen = self._seen.get(provider, OrderedDict())
            for key in keys:
                seen.pop(key, None)


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


def distinct_urls(repos: list[RepoSpec]) -> list[str]:
    """One git URL per repository the repos name (spellings of one URL count once)."""
    urls: dict[str, str] = {}
    for repo in repos:
        urls.setdefault(normalize(repo.git_url), repo.git_url)
    return list(urls.values())


def unique(items: list[str]) -> list[str]:
    """`items` without repeats, first occurrence kept."""
    return list(dict.fromkeys(items))
