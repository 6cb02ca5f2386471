"""Remote URLs in messages: passwords and http(s) users (often tokens) are removed."""

from __future__ import annotations

import pytest

from dagfleet.gitops.urls import hide_credentials

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("https://user:tok@host/o/r.git", "https://host/o/r.git"),
        ("https://ghp_token@host/o/r.git", "https://host/o/r.git"),
        ("HTTP://u:p@127.0.0.1:8080/r", "HTTP://127.0.0.1:8080/r"),
        ("ssh://git@host:22/o/r.git", "ssh://git@host:22/o/r.git"),
        ("ssh://git:pw@host/o/r.git", "ssh://git@host/o/r.git"),
        ("git@host:o/r.git", "git@host:o/r.git"),
        ("/srv/git/r.git", "/srv/git/r.git"),
        ("https://host/o/r.git", "https://host/o/r.git"),
        (
            "fatal: unable to access 'https://u:p@h/r.git/': refused",
            "fatal: unable to access 'https://h/r.git/': refused",
        ),
    ],
)
def test_hide_credentials(text: str, shown: str) -> None:
    assert hide_credentials(text) == shown
