"""`credentials:` in a repo file: references to a token or a deploy key, checked on load."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dagfleet.spec.credentials import GitCredentials, SecretRef
from dagfleet.spec.errors import SpecError
from dagfleet.spec.load import load_repo_file, parse_repo

pytestmark = pytest.mark.unit

HTTPS = "https://github.com/acme/sales.git"
SSH = "git@github.com:acme/sales.git"


def problems(doc: dict[str, Any]) -> list[str]:
    with pytest.raises(SpecError) as caught:
        parse_repo({"name": "sales", **doc}, "repos/sales.yaml")
    return [str(p) for p in caught.value.problems]


def test_a_token_from_env_or_file_and_a_deploy_key_load(tmp_path: Path) -> None:
    (tmp_path / "sales.yaml").write_text(
        f"name: sales\ngit_url: {HTTPS}\n"
        "credentials:\n  username: x-access-token\n  token: {from_env: SALES_GIT_TOKEN}\n"
    )
    repo = load_repo_file(tmp_path / "sales.yaml")
    assert repo.credentials == GitCredentials(
        username="x-access-token", token=SecretRef(from_env="SALES_GIT_TOKEN")
    )
    assert repo.credentials.kind == "https" and repo.credentials.user == "x-access-token"
    by_file = parse_repo(
        {"name": "sales", "git_url": HTTPS, "credentials": {"token": {"from_file": "s/t"}}}, "x"
    )
    assert by_file.credentials is not None and by_file.credentials.user == "git"
    key = parse_repo(
        {
            "name": "sales",
            "git_url": SSH,
            "credentials": {
                "ssh_key_file": "/run/secrets/sales-key",
                "ssh_known_hosts_file": "/run/secrets/known_hosts",
            },
        },
        "x",
    )
    assert key.credentials is not None and key.credentials.kind == "ssh"
    assert parse_repo({"name": "sales", "git_url": HTTPS}, "x").credentials is None


@pytest.mark.parametrize(
    ("url", "credentials", "expected"),
    [
        (
            HTTPS,
            {"token": {"from_env": "T"}, "ssh_key_file": "k"},
            "repos/sales.yaml: credentials: give either token (HTTPS) or ssh_key_file "
            "(SSH deploy key), not both",
        ),
        (
            HTTPS,
            {},
            "repos/sales.yaml: credentials: give token (HTTPS, with an optional username) "
            "or ssh_key_file (SSH deploy key)",
        ),
        (
            HTTPS,
            {"token": {"from_env": "T", "from_file": "t"}},
            "repos/sales.yaml: credentials.token: give exactly one of from_env (an environment "
            "variable holding the token) or from_file (a file holding it)",
        ),
        (
            HTTPS,
            {"token": "ghp_literal"},
            "repos/sales.yaml: credentials.token: Input should be a valid dictionary or "
            "instance of SecretRef",
        ),
        (
            HTTPS,
            {"token": {"value": "ghp_literal"}},
            "repos/sales.yaml: credentials.token.value: unknown key: remove it or check its "
            "spelling",
        ),
        (
            SSH,
            {"token": {"from_env": "T"}},
            "repos/sales.yaml: credentials: token needs an https:// (or http://) "
            f"git_url; git_url {SSH!r} is ssh",
        ),
        (
            HTTPS,
            {"ssh_key_file": "k"},
            "repos/sales.yaml: credentials: ssh_key_file needs an ssh git_url; "
            f"git_url {HTTPS!r} is https",
        ),
        (
            SSH,
            {"ssh_key_file": "k", "username": "git"},
            "repos/sales.yaml: credentials: username goes with token; an SSH deploy key needs none",
        ),
        (
            HTTPS,
            {"token": {"from_env": "T"}, "ssh_known_hosts_file": "kh"},
            "repos/sales.yaml: credentials: ssh_known_hosts_file goes with ssh_key_file",
        ),
        (
            SSH,
            {"ssh_key_file": "../outside"},
            "repos/sales.yaml: credentials.ssh_key_file: '../outside' contains '..': give a path "
            "under the fleet root, or the absolute path of the mounted secret "
            "(e.g. /run/secrets/db-password)",
        ),
        (
            HTTPS,
            {"token": {"from_env": "NOT-A-VAR"}},
            "repos/sales.yaml: credentials.token.from_env: 'NOT-A-VAR' is not a valid "
            "environment variable name: use [A-Za-z_][A-Za-z0-9_]*",
        ),
    ],
    ids=[
        "token and key",
        "neither",
        "two token sources",
        "a literal token",
        "a literal token value",
        "token with ssh url",
        "key with https url",
        "username with a key",
        "known_hosts with a token",
        "key outside the fleet",
        "bad variable name",
    ],
)
def test_credentials_problems_name_the_field(
    url: str, credentials: dict[str, Any], expected: str
) -> None:
    assert problems({"git_url": url, "credentials": credentials}) == [expected]
