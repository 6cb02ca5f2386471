"""Webhook signatures and push payloads of GitHub, GitLab and Gitea."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from dagfleet.api.webhook import BadSignature, matching_repos, parse_push, verify
from dagfleet.spec import RepoSpec

pytestmark = pytest.mark.unit
SECRET = "hook-secret"
BODY = b'{"ref": "refs/heads/main"}'
SIG = hmac.new(SECRET.encode(), BODY, hashlib.sha256).hexdigest()


@pytest.mark.parametrize(
    ("headers", "provider"),
    [
        ({"x-hub-signature-256": f"sha256={SIG}"}, "github"),
        ({"x-hub-signature-256": f"sha256={SIG}", "x-gitea-event": "push"}, "gitea"),
        ({"x-gitea-signature": SIG}, "gitea"),
        ({"x-gitlab-token": SECRET}, "gitlab"),
    ],
)
def test_good_signatures(headers: dict[str, str], provider: str) -> None:
    assert verify(headers, BODY, SECRET) == provider


@pytest.mark.parametrize(
    ("headers", "secret"),
    [
        ({}, SECRET),
        ({"x-hub-signature-256": SIG}, SECRET),  # missing sha256= prefix
        ({"x-hub-signature-256": f"sha256={SIG[:-1]}0"}, SECRET),
        ({"x-gitea-signature": "00" * 32}, SECRET),
        ({"x-gitlab-token": "wrong"}, SECRET),
        ({"x-gitlab-token": SECRET}, None),
        ({"x-hub-signature-256": f"sha256={SIG}"}, "other"),
    ],
)
def test_bad_signatures(headers: dict[str, str], secret: str | None) -> None:
    with pytest.raises(BadSignature):
        verify(headers, BODY, secret)


@pytest.mark.parametrize(
    ("provider", "headers", "payload", "urls", "branch"),
    [
        (
            "github",
            {"x-github-event": "push"},
            {
                "ref": "refs/heads/A",
                "repository": {"clone_url": "https://h/o/r.git", "ssh_url": "git@h:o/r.git"},
            },
            ["https://h/o/r.git", "git@h:o/r.git"],
            "A",
        ),
        (
            "gitlab",
            {"x-gitlab-event": "Push Hook"},
            {"ref": "refs/heads/B", "project": {"git_http_url": "https://gl/o/r.git"}},
            ["https://gl/o/r.git"],
            "B",
        ),
        (
            "gitea",
            {"x-gitea-event": "push"},
            {"ref": "refs/tags/v1", "repository": {"clone_url": "https://gt/o/r.git"}},
            ["https://gt/o/r.git"],
            None,
        ),
    ],
)
def test_parse_push(
    provider: str, headers: dict[str, str], payload: object, urls: list[str], branch: str | None
) -> None:
    push = parse_push(provider, headers, json.dumps(payload).encode())
    assert push.urls == urls and push.branch == branch


def test_matching_repos_compares_normalised_urls() -> None:
    repo = RepoSpec(name="r", git_url="https://h/o/r")
    push = parse_push("github", {}, b'{"repository": {"ssh_url": "git@h:o/r.git"}}')
    assert matching_repos(push, [repo]) == [repo]
