"""Key confinement: every trick to leave a prefix is refused (tables per rule)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from dagfleet_runtime import PrefixEscapeError, confine_local, normalize_key
from dagfleet_runtime.keys import confine_remote

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("a.csv", "a.csv"),
        ("bronze/bronze_data.csv", "bronze/bronze_data.csv"),
        ("a//b", "a/b"),
        ("./a/./b/", "a/b"),
        ("a/..b/c", "a/..b/c"),
        ("...", "..."),
        ("dir with space/é.csv", "dir with space/é.csv"),
    ],
)
def test_normalize_accepts(key: str, expected: str) -> None:
    assert normalize_key(key) == expected


@pytest.mark.parametrize(
    "key",
    [
        "",
        ".",
        "./",
        "..",
        "../x",
        "a/../../x",
        "a/..",
        "a/b/../..",
        "/etc/passwd",
        "//host/share",
        "~/x",
        "~root/x",
        "a\\..\\b",
        "..\\x",
        "C:\\x",
        "c:/x",
        "s3://other-bucket/x",
        "file:///etc/passwd",
        "a\0b",
        "a.csv\0.png",
    ],
)
def test_normalize_refuses(key: str) -> None:
    with pytest.raises(PrefixEscapeError):
        normalize_key(key)


def test_non_string_refused() -> None:
    with pytest.raises(PrefixEscapeError):
        normalize_key(b"a.csv")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("root", "key", "expected"),
    [
        ("s3://b/A/repos/x", "assets/a.csv", "s3://b/A/repos/x/assets/a.csv"),
        ("s3://b/A/repos/x/", "a//b", "s3://b/A/repos/x/a/b"),
    ],
)
def test_remote_keys(root: str, key: str, expected: str) -> None:
    assert confine_remote(root, key) == expected


@pytest.mark.parametrize("key", ["../y/a.csv", "/y", "a/../../y"])
def test_remote_refuses(key: str) -> None:
    with pytest.raises(PrefixEscapeError):
        confine_remote("s3://b/A/repos/x", key)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """root=x, sibling y holding a secret, and links of every kind inside x."""
    x, y = tmp_path / "A" / "repos" / "x", tmp_path / "A" / "repos" / "y"
    (x / "assets").mkdir(parents=True)
    y.mkdir(parents=True)
    (y / "secret.csv").write_text("secret")
    (x / "assets" / "mine.csv").write_text("mine")
    os.symlink(y, x / "to_y")  # directory link out
    os.symlink(y / "secret.csv", x / "secret_link.csv")  # file link out
    os.symlink("../y", x / "relative_out")  # relative link out
    os.symlink(x / "assets", x / "inside")  # link that stays inside
    os.symlink("/", x / "to_root")
    os.symlink(x / "loop", x / "loop")  # self loop
    return x


@pytest.mark.parametrize(
    "key",
    [
        "to_y/secret.csv",
        "to_y",
        "secret_link.csv",
        "relative_out/secret.csv",
        "to_root/etc/passwd",
        "inside/../../y/secret.csv",
    ],
)
def test_local_symlinks_out_refused(tree: Path, key: str) -> None:
    with pytest.raises(PrefixEscapeError):
        confine_local(str(tree), key)


@pytest.mark.parametrize(
    ("key", "relative"),
    [
        ("assets/mine.csv", "assets/mine.csv"),
        ("inside/mine.csv", "assets/mine.csv"),
        ("new/dir/file.csv", "new/dir/file.csv"),
    ],
)
def test_local_inside_allowed(tree: Path, key: str, relative: str) -> None:
    assert confine_local(str(tree), key) == os.path.realpath(tree / relative)


def test_root_behind_symlink(tmp_path: Path, tree: Path) -> None:
    alias = tmp_path / "alias"
    os.symlink(tree, alias)
    assert confine_local(str(alias), "assets/mine.csv") == str(tree / "assets" / "mine.csv")


def test_sibling_with_common_prefix_refused(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    (tmp_path / "x2").mkdir()
    os.symlink(tmp_path / "x2", tmp_path / "x" / "l")
    with pytest.raises(PrefixEscapeError):
        confine_local(str(tmp_path / "x"), "l/file")
