"""Which remotes get a link to the commit's web page, and what it looks like."""

from __future__ import annotations

import pytest

from dagfleet.api.page_html import commit_base

SHA = "0123456789abcdef0123456789abcdef01234567"


@pytest.mark.parametrize(
    ("git_url", "page"),
    [
        ("https://github.com/acme/sales.git", f"https://github.com/acme/sales/commit/{SHA}"),
        ("https://github.com/acme/sales", f"https://github.com/acme/sales/commit/{SHA}"),
        ("git@github.com:acme/sales.git", f"https://github.com/acme/sales/commit/{SHA}"),
        ("ssh://git@github.com/acme/sales.git", f"https://github.com/acme/sales/commit/{SHA}"),
        ("https://gitlab.com/acme/sales.git", f"https://gitlab.com/acme/sales/-/commit/{SHA}"),
        (
            "https://gitlab.com/acme/data/sales.git",
            f"https://gitlab.com/acme/data/sales/-/commit/{SHA}",
        ),
        ("git@bitbucket.org:acme/sales.git", f"https://bitbucket.org/acme/sales/commits/{SHA}"),
        (
            "https://git.example.com/acme/sales.git",
            f"https://git.example.com/acme/sales/commit/{SHA}",
        ),
        (
            "https://git.example.com:3000/acme/s",
            f"https://git.example.com:3000/acme/s/commit/{SHA}",
        ),
        # No web page: local remotes, plain http, unknown ssh hosts, other path shapes.
        ("file:///srv/git/sales.git", None),
        ("/srv/git/sales.git", None),
        ("http://git.example.com/acme/sales.git", None),
        ("git@git.example.com:acme/sales.git", None),
        ("https://git.example.com/sales.git", None),
        ("https://git.example.com/scm/acme/data/sales.git", None),
        ("https://github.com/", None),
    ],
)
def test_commit_links(git_url: str, page: str | None) -> None:
    base = commit_base(git_url)
    assert (None if base is None else base + SHA) == page
