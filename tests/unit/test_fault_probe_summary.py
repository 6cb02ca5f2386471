"""The fault probe's JSON summary (bench/_probe_summary.py): counts, order, clipping,
unique names, and a case that raises becoming a broken case."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

# Loaded by path: putting bench/ on sys.path would let bench/medallion.py shadow the
# medallion example package for every later test in the run.
_PATH = Path(__file__).resolve().parents[2] / "bench" / "_probe_summary.py"
_spec = importlib.util.spec_from_file_location("_probe_summary", _PATH)
assert _spec is not None and _spec.loader is not None
_summary = importlib.util.module_from_spec(_spec)
sys.modules["_probe_summary"] = _summary
_spec.loader.exec_module(_summary)
DETAIL_MAX, CaseResult, run_case, summarize = (
    _summary.DETAIL_MAX,
    _summary.CaseResult,
    _summary.run_case,
    _summary.summarize,
)


def test_counts_and_cases_in_run_order() -> None:
    out = summarize(
        [
            CaseResult("kill9_code_server", True, "back in 3.1s"),
            CaseResult("etag_head_if_match", False, "HEAD answered 405"),
            CaseResult("webhook_signatures", True, "4 bad refused"),
        ]
    )
    assert (out["tried"], out["held"], out["broke"]) == (3, 2, 1)
    assert [c["name"] for c in out["cases"]] == [
        "kill9_code_server",
        "etag_head_if_match",
        "webhook_signatures",
    ]
    assert out["cases"][1] == {
        "name": "etag_head_if_match",
        "held": False,
        "detail": "HEAD answered 405",
    }
    json.dumps(out)  # printable as one JSON object


def test_empty_probe_is_all_zero() -> None:
    assert summarize([]) == {"tried": 0, "held": 0, "broke": 0, "cases": []}


def test_long_detail_is_clipped_and_marked() -> None:
    detail = summarize([CaseResult("x", False, "y" * 5000)])["cases"][0]["detail"]
    assert len(detail) == DETAIL_MAX and detail.endswith("[truncated]")


def test_repeated_names_are_refused() -> None:
    with pytest.raises(ValueError, match="repeated: a"):
        summarize([CaseResult("a", True, ""), CaseResult("a", False, "")])


def test_a_case_that_raises_is_a_break_naming_the_error() -> None:
    def hangs() -> CaseResult:
        raise AssertionError("timed out after 60s waiting for the webserver")

    got = run_case("kill9_webserver", hangs)
    assert got.name == "kill9_webserver" and not got.held
    assert "AssertionError" in got.detail and "timed out after 60s" in got.detail
