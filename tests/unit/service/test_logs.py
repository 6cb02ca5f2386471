"""Log tails: last lines, several locations labelled, missing files empty."""

from __future__ import annotations

from pathlib import Path

import pytest

from dagfleet.service.logs import tail_bytes, tail_many

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("content", "lines", "expected"),
    [
        (b"a\nb\nc\n", 2, b"b\nc\n"),
        (b"a\nb\nc", 2, b"b\nc"),
        (b"a\nb\n", 10, b"a\nb\n"),
        (b"a\nb\n", 0, b""),
        (b"", 5, b""),
        (b"".join(b"line %d\n" % i for i in range(50_000)), 1, b"line 49999\n"),
    ],
)
def test_tail_bytes(tmp_path: Path, content: bytes, lines: int, expected: bytes) -> None:
    path = tmp_path / "x.log"
    path.write_bytes(content)
    data, end = tail_bytes(path, lines)
    assert data == expected and end == len(content)


def test_tail_many_labels_lines(tmp_path: Path) -> None:
    (tmp_path / "a.log").write_bytes(b"1\n2\n")
    paths = {"r-A": tmp_path / "a.log", "r-B": tmp_path / "missing.log"}
    assert tail_many(paths, 1)[0] == b"[r-A] 2\n"
    assert tail_many({"r-A": tmp_path / "a.log"}, 5)[0] == b"1\n2\n"
