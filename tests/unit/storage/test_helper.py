"""LocationStorage: the user helper, built from the variables dagfleet sets."""

from __future__ import annotations

from pathlib import Path

import pytest
from dagfleet_runtime import LocationStorage, PrefixEscapeError

pytestmark = pytest.mark.unit


def test_from_env_requires_root() -> None:
    with pytest.raises(RuntimeError, match="DAGFLEET_STORAGE_ROOT"):
        LocationStorage.from_env({})


def test_from_env_reads_prefixes_and_endpoint() -> None:
    env = {
        "DAGFLEET_STORAGE_ROOT": "s3://b/p/A/repos/x",
        "DAGFLEET_SHARED": "s3://b/p/A/shared",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9000",
    }
    s = LocationStorage.from_env(env)
    assert s.path("assets/a.csv") == "s3://b/p/A/repos/x/assets/a.csv"
    assert s.shared_path("ref.csv") == "s3://b/p/A/shared/ref.csv"
    assert s.storage_options() == {"client_kwargs": {"endpoint_url": "http://127.0.0.1:9000"}}


def test_dagfleet_endpoint_wins() -> None:
    env = {
        "DAGFLEET_STORAGE_ROOT": "s3://b/x",
        "DAGFLEET_S3_ENDPOINT_URL": "http://a:1",
        "AWS_ENDPOINT_URL": "http://b:2",
    }
    assert LocationStorage.from_env(env).endpoint_url == "http://a:1"


def test_local_read_write_and_shared_read_only(tmp_path: Path) -> None:
    root, shared = tmp_path / "A" / "repos" / "x", tmp_path / "A" / "shared"
    shared.mkdir(parents=True)
    (shared / "ref.csv").write_text("k,v\n")
    s = LocationStorage(root=str(root), shared=str(shared))
    with s.open("assets/out.csv", "w") as fh:
        fh.write("ok")
    assert (root / "assets" / "out.csv").read_text() == "ok"
    with s.open_shared("ref.csv", "r") as fh:
        assert fh.read() == "k,v\n"
    for mode in ("w", "a", "r+", "xb", "wb"):
        with pytest.raises(PermissionError):
            s.open_shared("ref.csv", mode)
    with pytest.raises(PrefixEscapeError):
        s.open("../../shared/ref.csv", "w")


def test_no_shared_prefix() -> None:
    with pytest.raises(PrefixEscapeError):
        LocationStorage(root="/tmp/x").shared_path("a")
