"""same_url: a webhook's repository URL matches a repo file's git_url in any spelling."""

from __future__ import annotations

import pytest

from dagfleet.gitops.urls import same_url

pytestmark = pytest.mark.unit

HTTPS = "https://github.com/acme/sales"


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (HTTPS, HTTPS),
        (HTTPS, "https://github.com/acme/sales.git"),
        (HTTPS, "https://github.com/acme/sales/"),
        (HTTPS, "https://github.com/acme/sales.git/"),
        (HTTPS, "http://github.com/acme/sales"),
        (HTTPS, "git@github.com:acme/sales.git"),
        (HTTPS, "ssh://git@github.com/acme/sales.git"),
        (HTTPS, "git://github.com/acme/sales.git"),
        (HTTPS, "https://ci-bot:token@github.com/acme/sales.git"),
        (HTTPS, " https://github.com/acme/sales "),
        (HTTPS, "https://GitHub.com/Acme/Sales"),
        ("git@gitlab.example.org:team/sub/sales.git", "https://gitlab.example.org/team/sub/sales"),
        ("/srv/git/sales.git", "file:///srv/git/sales.git"),
        ("/srv/git/sales.git", "/srv/git/sales"),
    ],
)
def test_same_repository(a: str, b: str) -> None:
    assert same_url(a, b)
    assert same_url(b, a)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (HTTPS, "https://github.com/acme/marketing"),
        (HTTPS, "https://github.com/acme/sales-api"),
        (HTTPS, "https://github.com/other/sales"),
        (HTTPS, "https://gitlab.com/acme/sales"),
        (HTTPS, "git@gitlab.com:acme/sales.git"),
        (HTTPS, "https://github.com/acme/sales/wiki"),
        ("/srv/git/sales.git", "/srv/other/sales.git"),
        ("file:///srv/a/sales.git", "file:///srv/b/sales.git"),
    ],
)
def test_different_repositories(a: str, b: str) -> None:
    assert not same_url(a, b)
    assert not same_url(b, a)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (
            "ssh://git@gitlab.example.org:2222/team/sales.git",
            "https://gitlab.example.org/team/sales",
        ),
        ("https://github.com:443/acme/sales", HTTPS),
    ],
)
def test_explicit_port_is_not_part_of_the_path(a: str, b: str) -> None:
    assert same_url(a, b)
