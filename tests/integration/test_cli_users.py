"""`dagfleet user add|list|remove`: the front door's local users file, through the CLI."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from dagfleet.frontdoor.passwords import verify_password
from dagfleet.frontdoor.users import UsersFile
from tests.support.fleetproc import DAGFLEET

pytestmark = pytest.mark.integration


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [DAGFLEET, *args], input=stdin, capture_output=True, text=True, timeout=120, check=False
    )


def test_users_are_added_listed_and_removed(tmp_path: Path) -> None:
    fleet = tmp_path / "fleet"
    assert run("init", str(fleet)).returncode == 0
    added = run(
        "user", "add", "ada", "--password-stdin", "--fleet", str(fleet), stdin="s3cret-pass\n"
    )
    assert added.returncode == 0, added.stderr
    path = fleet / ".dagfleet" / "users"
    assert f"added ada in {path}" in added.stdout
    assert "ada holds no role yet" in added.stderr and "{role: admin, users: [ada]}" in added.stderr
    assert path.stat().st_mode & 0o777 == 0o600
    stored = UsersFile(path).read()["ada"]
    assert stored.startswith("scrypt$") and "s3cret-pass" not in path.read_text()
    assert verify_password("s3cret-pass", stored) and not verify_password("other", stored)
    assert run("user", "list", "--fleet", str(fleet)).stdout.strip() == "ada\tno role"

    with (fleet / "fleet.yaml").open("a") as f:
        f.write("auth:\n  roles:\n    - {role: launcher, users: [ada], environments: [A]}\n")
    listed = run("user", "list", "--fleet", str(fleet))
    assert listed.stdout.strip() == "ada\tlauncher in environments A", listed.stderr

    again = run(
        "user", "add", "ada", "--password-stdin", "--fleet", str(fleet), stdin="n3w-password\n"
    )
    assert again.returncode == 0 and "updated ada" in again.stdout
    assert verify_password("n3w-password", UsersFile(path).read()["ada"])

    removed = run("user", "remove", "ada", "--fleet", str(fleet))
    assert removed.returncode == 0 and UsersFile(path).read() == {}
    missing = run("user", "remove", "ada", "--fleet", str(fleet))
    assert missing.returncode == 2 and "no user 'ada'" in missing.stderr


def test_bad_names_and_short_passwords_change_nothing(tmp_path: Path) -> None:
    fleet = tmp_path / "fleet"
    assert run("init", str(fleet)).returncode == 0
    bad = run(
        "user", "add", "no spaces", "--password-stdin", "--fleet", str(fleet), stdin="long-enough\n"
    )
    assert bad.returncode == 2 and "is not a user name" in bad.stderr
    short = run("user", "add", "bob", "--password-stdin", "--fleet", str(fleet), stdin="short\n")
    assert short.returncode == 2 and "shorter than 8" in short.stderr
    assert not (fleet / ".dagfleet" / "users").exists()
