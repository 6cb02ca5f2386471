"""Tables fit the width with an ellipsis and never wrap; -o wide shows everything."""

from __future__ import annotations

import json

import pytest
import yaml

from dagfleet.cli import output
from dagfleet.cli.output import Format, fit, print_table, resolve, status_row
from dagfleet.status import LocationStatus

pytestmark = pytest.mark.unit

LONG = "fetch failed: " + "/srv/git/a-very-long-path/" * 8 + "sales.git: not found"


def failing() -> LocationStatus:
    s = LocationStatus(location="sales-A", repo="sales", env="A", commit="c" * 40)
    s = s.with_condition("Serving", "True", "CodeServerRunning", "serving")
    return s.with_condition("Synced", "False", "GitFetchFailed", LONG + "\nsecond line")


@pytest.mark.parametrize(
    ("natural", "flex", "limit", "expected"),
    [
        ([5, 5, 5], [False, False, True], 80, [5, 5, 5]),
        ([10, 10, 100], [False, False, True], 60, [10, 10, 36]),
        ([10, 50, 50], [False, True, True], 60, [10, 23, 23]),
        ([40, 40], [False, False], 20, [40, 40]),  # nothing may shrink: left as is
        ([10, 20], [False, True], 5, [10, 8]),  # shrinks no further than 8
    ],
)
def test_fit(natural: list[int], flex: list[bool], limit: int, expected: list[int]) -> None:
    assert fit(natural, flex, limit) == expected


def test_status_row_built_once_for_table_and_wide() -> None:
    s = failing()
    assert status_row(s, wide=False) == ["sales-A", "A", "c" * 12, "True", "GitFetchFailed", LONG]
    wide = status_row(s, wide=True)
    assert wide[:4] == ["sales-A", "A", "c" * 40, "-"]
    assert wide[-2:] == ["-", LONG + "\nsecond line"]  # SERVER, MESSAGE


def test_status_row_shows_the_commit_being_loaded() -> None:
    loading = failing().model_copy(update={"progressing_commit": "d" * 40})
    assert status_row(loading, wide=False)[2] == f"{'c' * 12} → {'d' * 12}"
    assert status_row(loading, wide=True)[2] == f"{'c' * 40} → {'d' * 40}"
    same = failing().model_copy(update={"progressing_commit": "c" * 40})
    assert status_row(same, wide=False)[2] == "c" * 12


def test_table_fits_80_columns_with_an_ellipsis(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    output.status_table([failing()], wide=False)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2, "one line per row: nothing wraps"
    assert all(len(line) <= 80 for line in lines)
    assert lines[1].endswith("…")


def test_wide_shows_the_full_message(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    output.status_table([failing()], wide=True)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert LONG in lines[1] and "second line" in lines[1]


def test_print_table_pads_columns(capsys: pytest.CaptureFixture[str]) -> None:
    print_table(["A", "LONGER"], [["x", "y"], ["wider", "z"]], wide=False)
    assert capsys.readouterr().out == "A      LONGER\nx      y\nwider  z\n"


def test_json_and_yaml_documents(capsys: pytest.CaptureFixture[str]) -> None:
    doc = [{"name": "sales", "n": 1}]
    output.emit(doc, Format.json, lambda _w: None)
    assert json.loads(capsys.readouterr().out) == doc
    output.emit(doc, Format.yaml, lambda _w: None)
    assert yaml.safe_load(capsys.readouterr().out) == doc


def test_json_flag_is_an_alias_and_output_wins() -> None:
    assert resolve(None, False) is Format.table
    assert resolve(None, True) is Format.json
    assert resolve(Format.wide, True) is Format.wide


def test_errors_are_never_wrapped_or_cropped(capsys: pytest.CaptureFixture[str]) -> None:
    message = "repos/" + "x" * 300 + ".yaml: branch: [not markup] is invalid"
    output.error(message)
    assert capsys.readouterr().err == f"error {message}\n"
