"""Validation of names, refs, URLs and paths (dagfleet.spec.names), one table per rule.

The ref checks run the real `git check-ref-format`, so these tests exercise git's rules.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from dagfleet.spec import names

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    "name", ["sales", "a", "a1", "sales-eu", "s3-loader-2", "a" * names.MAX_REPO_NAME]
)
def test_repo_name_accepted(name: str) -> None:
    assert names.check_repo_name(name) is None


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("Sales", "not a valid repo name"),
        ("sales_eu", "not a valid repo name"),
        ("-sales", "not a valid repo name"),
        ("sales-", "not a valid repo name"),
        ("sa les", "not a valid repo name"),
        ("sales.eu", "not a valid repo name"),
        ("1sales", "starting with a letter"),  # a Kubernetes Service name starts with one
        ("", "not a valid repo name"),
        ("a" * (names.MAX_REPO_NAME + 1), "41 characters long: use at most 40"),
    ],
)
def test_repo_name_refused(name: str, why: str) -> None:
    error = names.check_repo_name(name)
    assert error is not None and why in error
    assert repr(name) in error


@pytest.mark.parametrize(
    "name", ["A", "B", "prod", "Prod-EU", "dev2", "a" * names.MAX_ENV_NAME, "1"]
)
def test_env_name_accepted_and_keeps_case(name: str) -> None:
    assert names.check_env_name(name) is None


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("a_b", "not a valid environment name"),
        ("-A", "not a valid environment name"),
        ("A-", "not a valid environment name"),
        ("", "not a valid environment name"),
        ("A B", "not a valid environment name"),
        ("a" * (names.MAX_ENV_NAME + 1), "13 characters long: use at most 12"),
    ],
)
def test_env_name_refused(name: str, why: str) -> None:
    error = names.check_env_name(name)
    assert error is not None and why in error


@pytest.mark.parametrize(
    ("name", "ok"),
    [("dagfleet", True), ("my-fleet", True), ("MyFleet", False), ("a" * 41, False)],
)
def test_fleet_name(name: str, ok: bool) -> None:
    assert (names.check_fleet_name(name) is None) is ok


def test_longest_location_name_fits_a_kubernetes_label() -> None:
    longest = "r" * names.MAX_REPO_NAME + "-" + "E" * names.MAX_ENV_NAME
    assert len(longest) <= names.MAX_LABEL == 63


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("PATH", True),
        ("_x", True),
        ("DAGSTER_POSTGRES_PASSWORD", True),
        ("a1", True),
        ("1A", False),
        ("A-B", False),
        ("A B", False),
        ("", False),
        ("A=B", False),
    ],
)
def test_env_var_name(name: str, ok: bool) -> None:
    assert (names.check_env_var_name(name) is None) is ok


@pytest.mark.parametrize(
    "ref", ["main", "A", "feature/x", "release-1.2", "v1.0", "users/jo/fix_2", "é"]
)
def test_git_ref_accepted(ref: str) -> None:
    assert names.check_git_ref(ref) is None


@pytest.mark.parametrize(
    ("ref", "why"),
    [
        ("", "must not be empty or start with '-'"),
        ("-x", "must not be empty or start with '-'"),
        ("--upload-pack=touch", "must not be empty or start with '-'"),
        ("A B", "is not a valid git ref"),
        ("A\tB", "is not a valid git ref"),
        ("main\n", "is not a valid git ref"),
        ("a\0b", "is not a valid git ref"),
        ("a..b", "is not a valid git ref"),
        ("a@{1}", "is not a valid git ref"),
        ("@{-1}", "is not a valid git ref"),
        ("x.lock", "is not a valid git ref"),
        ("a~1", "is not a valid git ref"),
        ("a^", "is not a valid git ref"),
        ("a:b", "is not a valid git ref"),
        ("a*", "is not a valid git ref"),
        ("a?b", "is not a valid git ref"),
        ("a[b", "is not a valid git ref"),
        ("a\\b", "is not a valid git ref"),
        ("/a", "is not a valid git ref"),
        ("a/", "is not a valid git ref"),
        ("a//b", "is not a valid git ref"),
        (".hidden", "is not a valid git ref"),
        ("HEAD", "is not a valid git ref"),
    ],
)
def test_git_ref_refused(ref: str, why: str) -> None:
    error = names.check_git_ref(ref)
    assert error is not None and why in error
    assert repr(ref) in error


def test_git_ref_check_does_not_depend_on_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A fleet directory is itself usually a git repository (GitOps): dagfleet runs there.
    ident = ["-c", "user.name=t", "-c", "user.email=t@example.com"]
    for args in (
        ["init", "--quiet", "--initial-branch", "main"],
        [*ident, "commit", "--quiet", "--allow-empty", "-m", "x"],
        ["checkout", "--quiet", "-b", "other"],
        ["checkout", "--quiet", "main"],
    ):
        subprocess.run(["git", *args], cwd=tmp_path, check=True)
    monkeypatch.chdir(tmp_path)
    assert names.check_git_ref("@{-1}") is not None


@pytest.mark.parametrize(
    ("pin", "ok"),
    [
        ("0123abc", True),
        ("0123456789abcdef0123456789abcdef01234567", True),
        ("v1.2.3", True),
        ("release/2024", True),
        ("-x", False),
        ("v1 2", False),
        ("a..b", False),
    ],
)
def test_pin_is_a_sha_or_a_tag(pin: str, ok: bool) -> None:
    assert (names.check_pin(pin) is None) is ok


@pytest.mark.parametrize(
    "url",
    [
        "https://github.com/acme/sales.git",
        "http://git.local/acme/sales",
        "ssh://git@github.com/acme/sales.git",
        "git://git.local/sales",
        "git@github.com:acme/sales.git",
        "deploy.bot@git.example.org:team/sales",
        "file:///srv/git/sales.git",
        "/srv/git/sales.git",
    ],
)
def test_git_url_accepted(url: str) -> None:
    assert names.check_git_url(url) is None


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("", "is empty"),
        ("ext::sh -c touch% /tmp/pwned", "remote helper transport"),
        ("EXT::sh -c id", "remote helper transport"),
        ("fd::17", "remote helper transport"),
        ("-oProxyCommand=touch /tmp/pwned", "must not start with '-'"),
        ("--upload-pack=touch /tmp/pwned", "must not start with '-'"),
        ("https://x/y\nz", "control character"),
        ("https://x/y\0", "control character"),
        ("sales", "not a supported git URL"),
        ("./sales", "not a supported git URL"),
        ("../remotes/sales.git", "not a supported git URL"),
        ("ftp://host/sales", "not a supported git URL"),
        # ssh reads a host starting with '-' as an option (found by the fault probe).
        ("ssh://-oProxyCommand=touch%20X/x", "host starting with '-'"),
        ("ssh://git@-oProxyCommand=x/y", "host starting with '-'"),
        ("ssh://git@%2doProxyCommand=x/y", "escaped"),
        ("git@-oProxy:x/y", "host starting with '-'"),
    ],
)
def test_git_url_refused(url: str, why: str) -> None:
    error = names.check_git_url(url)
    assert error is not None and why in error


@pytest.mark.parametrize(
    "path", [".", "defs.py", "src/pkg/defs.py", "a..b/c.py", "sub/dir", "s3/prefix-1"]
)
def test_relative_path_accepted(path: str) -> None:
    assert names.check_relative_path(path) is None


@pytest.mark.parametrize(
    ("path", "why"),
    [
        ("", "is empty"),
        ("..", "remove '..'"),
        ("../x.py", "remove '..'"),
        ("a/../../b.py", "remove '..'"),
        ("a\\..\\b.py", "remove '..'"),
        ("/etc/passwd", "is absolute"),
        ("a\0b.py", "NUL byte"),
        ("-x.py", "must not start with '-'"),
    ],
)
def test_relative_path_refused(path: str, why: str) -> None:
    error = names.check_relative_path(path)
    assert error is not None and why in error


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("medallion.definitions", True),
        ("_pkg.mod_1", True),
        ("defs", True),
        ("a..b", False),
        ("1pkg", False),
        ("pkg.", False),
        ("pkg-name", False),
        ("pkg/defs", False),
        ("os; rm -rf", False),
    ],
)
def test_module_name(name: str, ok: bool) -> None:
    assert (names.check_module_name(name) is None) is ok


@pytest.mark.parametrize(
    "path",
    [
        "secrets/db",
        ".",
        "./-x",
        "a..b/c",
        # Absolute paths are allowed: secrets an operator mounts outside the fleet root.
        "/run/secrets/db-password",
        "/var/run/secrets/kubernetes.io/token",
    ],
)
def test_secret_file_accepted(path: str) -> None:
    assert names.check_secret_file(path) is None


@pytest.mark.parametrize(
    ("path", "why"),
    [
        ("", "is empty"),
        ("..", "contains '..'"),
        ("../../etc/shadow", "contains '..'"),
        ("secrets/../../x", "contains '..'"),
        ("/run/secrets/../../etc/shadow", "contains '..'"),
        ("secrets\\..\\..\\x", "contains '..'"),
        ("-x", "must not start with '-': write ./-x"),
        ("--help", "must not start with '-'"),
        ("secrets/db\0.txt", "NUL byte"),
        ("secrets/db\n", "control character"),
    ],
)
def test_secret_file_refused(path: str, why: str) -> None:
    error = names.check_secret_file(path)
    assert error is not None and why in error


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("defs", True),
        ("prod_defs", True),
        ("_Defs2", True),
        ("", False),
        ("-defs", False),
        ("--help", False),
        ("1defs", False),
        ("defs.sub", False),
        ("defs()", False),
        ("a b", False),
        ("defs\0", False),
        ("class", False),
    ],
)
def test_attribute_is_a_python_identifier(name: str, ok: bool) -> None:
    error = names.check_attribute(name)
    assert (error is None) is ok
    if error is not None:
        assert repr(name) in error and "name of a Python variable" in error
