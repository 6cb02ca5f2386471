"""The benches' figures arithmetic (bench/_fleet.py): percentiles, latency summaries,
ratios and the per-added-location slope of a growth curve."""

from __future__ import annotations

import json
import math

import pytest

from tests.support.benchload import load_bench

_fleet = load_bench("_fleet")


@pytest.mark.parametrize(
    ("values", "p", "expected"),
    [
        ([1.0], 50, 1.0),
        ([3.0, 1.0, 2.0], 50, 2.0),
        ([1.0, 2.0, 3.0, 4.0], 50, 2.5),
        ([1.0, 2.0, 3.0, 4.0, 5.0], 95, 4.8),
        ([1.0, 2.0, 3.0, 4.0, 5.0], 100, 5.0),
        ([1.0, 2.0, 3.0, 4.0, 5.0], 0, 1.0),
    ],
)
def test_percentile_interpolates_between_ranks(
    values: list[float], p: float, expected: float
) -> None:
    assert _fleet.percentile(values, p) == pytest.approx(expected)


def test_percentile_of_nothing_is_nan() -> None:
    assert math.isnan(_fleet.percentile([], 50))


def test_latency_summary_rounds_and_orders() -> None:
    got = _fleet.latency_summary([4.0, 1.0, 3.0, 2.0])
    assert got == {"n": 4, "p50": 2.5, "p95": 3.85, "min": 1.0, "max": 4.0}
    json.dumps(got)


def test_latency_summary_of_nothing_is_printable_nulls() -> None:
    got = _fleet.latency_summary([])
    assert got == {"n": 0, "p50": None, "p95": None, "min": None, "max": None}
    json.dumps(got, allow_nan=False)


@pytest.mark.parametrize(
    ("num", "den", "expected"),
    [(1.0, 2.0, 0.5), (3.0, 3.0, 1.0), (None, 2.0, None), (1.0, None, None), (1.0, 0.0, None)],
)
def test_ratio(num: float | None, den: float | None, expected: float | None) -> None:
    assert _fleet.ratio(num, den) == expected


def test_ratio_of_nan_is_none() -> None:
    assert _fleet.ratio(float("nan"), 1.0) is None


def test_growth_is_the_slope_from_the_smallest_size() -> None:
    # 10 locations 1500 MiB, 25: 2250, 50: 3500 -> 50 MiB per added location each time
    points = {25: 2250.0, 10: 1500.0, 50: 3500.0}
    assert _fleet.growth_per_unit(points) == {25: 50.0, 50: 50.0}


def test_growth_needs_two_sizes() -> None:
    assert _fleet.growth_per_unit({10: 1500.0}) == {}
    assert _fleet.growth_per_unit({}) == {}
