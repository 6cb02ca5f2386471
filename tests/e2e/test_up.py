"""Scenario: a new user runs `dagfleet up` in an empty directory.

The embedded default fleet appears (medallion in A and B), both locations load
in the Dagster UI, the seed-001 jobs run in A through GraphQL and write gold
data under A's storage root only; SIGTERM stops every process it started.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

from dagfleet.scaffold import example_source
from tests.support.fleetproc import dagfleet_processes


def expected_gold() -> dict[str, tuple[int, int, float]]:
    totals: dict[str, list[float]] = defaultdict(lambda: [0, 0, 0.0])
    source = example_source() / "medallion" / "dummy_data" / "bronze_data.csv"
    with source.open() as fh:
        for row in csv.DictReader(fh):
            t = totals[row["category"]]
            t[0] += 1
            t[1] += int(row["quantity"])
            t[2] += round(float(row["amount"]) * int(row["quantity"]), 2)
    return {k: (int(v[0]), int(v[1]), round(v[2], 2)) for k, v in totals.items()}


def test_up_runs_the_default_medallion_fleet(tmp_path: Path, start_fleet) -> None:
    home = tmp_path / "newuser"
    home.mkdir()
    # `dagfleet up` with no --fleet in an empty directory creates ./.dagfleet.
    fleet = start_fleet(None, cwd=home)
    fleet.wait_loaded({"medallion-A", "medallion-B"})

    for job in ("bronze_to_silver_job", "silver_to_gold_job"):
        run_id = fleet.gql.launch("medallion-A", job)
        assert fleet.gql.wait_run(run_id) == "SUCCESS", job

    root_a = home / ".dagfleet" / "data" / "A" / "repos" / "medallion"
    root_b = home / ".dagfleet" / "data" / "B" / "repos" / "medallion"
    with (root_a / "gold" / "gold_data.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    got = {
        r["category"]: (int(r["order_count"]), int(r["total_quantity"]), float(r["total_price"]))
        for r in rows
    }
    want = expected_gold()
    assert set(got) == set(want)
    for category, (count, quantity, price) in want.items():
        assert got[category][:2] == (count, quantity)
        assert abs(got[category][2] - price) < 0.05
    assert (root_a / "silver" / "silver_data.csv").exists()
    # The steps' captured output lands under the location's own logs/ prefix.
    step_logs = [p for p in (root_a / "logs").rglob("*") if p.is_file() and p.stat().st_size]
    assert step_logs, "no compute logs under medallion-A's logs/"
    assert any("silver" in p.read_text(errors="replace") for p in step_logs)
    assert not (root_b / "logs").exists() or not any((root_b / "logs").rglob("*.err"))
    assert not (root_b / "gold").exists()
    assert not (root_b / "silver").exists()

    elapsed = fleet.stop()
    assert elapsed < 30
    assert dagfleet_processes(fleet.state) == []
