"""Startup figures: cold and warm start of 4 locations (2 repos x environments A and B),
private memory (USS) per code server, and the latency of a trivial run.

Prints one JSON object: locations, cold_start_seconds, warm_start_seconds,
uss_mib_per_code_server (per location), uss_mib_max, trivial_run_seconds
(runs, p50, p95, min) and targets. Targets on a 2-core machine: 4 locations
loaded in <= 15 s from a warm state, <= 120 MiB USS per location, trivial run <= 3 s.

    uv run --frozen python bench/startup.py [--runs 10]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from _fleet import (
    CodeRepo,
    RunningFleet,
    code_server_uss_mib,
    median,
    percentile,
    wait_for,
    write_fleet,
)

LOCATIONS = {"alpha-A", "alpha-B", "beta-A", "beta-B"}


def main(runs: int = 10) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="dagfleet-bench-") as tmp:
        base = Path(tmp)
        repos = {name: CodeRepo(base / name, name=name) for name in ("alpha", "beta")}
        fleet_dir = write_fleet(
            base / "fleet",
            {
                name: {"git_url": repo.url, "module_name": "demo.definitions"}
                for name, repo in repos.items()
            },
        )
        cold = RunningFleet(fleet_dir).start()
        t0 = time.monotonic()
        try:
            cold.wait_loaded(LOCATIONS, timeout=600)
            cold_s = time.monotonic() - t0
        finally:
            cold.stop()

        warm = RunningFleet(fleet_dir).start()
        t0 = time.monotonic()
        try:
            warm.wait_loaded(LOCATIONS, timeout=300)
            warm_s = time.monotonic() - t0
            time.sleep(2)
            uss = code_server_uss_mib(warm.state)
            latencies = []
            for _ in range(runs):
                start = time.monotonic()
                run_id = warm.gql.launch("alpha-A", "trivial_job")
                status = warm.gql.wait_run(run_id)
                latencies.append(time.monotonic() - start)
                assert status == "SUCCESS", status
            wait_for(lambda: True, 1, "noop")
        finally:
            warm.stop()
    return {
        "locations": len(LOCATIONS),
        "cold_start_seconds": round(cold_s, 2),
        "warm_start_seconds": round(warm_s, 2),
        "uss_mib_per_code_server": uss,
        "uss_mib_max": max(uss.values()) if uss else None,
        "trivial_run_seconds": {
            "runs": runs,
            "p50": round(median(latencies), 2),
            "p95": round(percentile(latencies, 95), 2),
            "min": round(min(latencies), 2),
        },
        "targets": {"warm_start_seconds": 15, "uss_mib": 120, "trivial_run_seconds": 3},
    }


def cli() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=10, help="trivial runs timed (default 10)")
    args = parser.parse_args()
    print(json.dumps(main(args.runs), indent=2))


if __name__ == "__main__":
    cli()
