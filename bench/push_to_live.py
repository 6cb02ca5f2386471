"""Push-to-live latency: commit a new asset to branch A, time from `git push` until the
webserver shows it.

Two modes, each over N pushes to a local file:// remote (one location, no daemon):
- webhook: polling effectively off, a signed GitHub push webhook right after each push;
- polling: only the poll loop (period P seconds). Each push waits a uniformly
  random time in [0, P) after the previous one went live, so pushes land at a
  random point of the poll period: the expected latency is about P/2 plus the
  publish time, and the worst about P plus the publish time.

Prints one JSON object: poll_period_seconds, seed, per mode n, p50, p95, min and max in
seconds, and targets. Targets on a 2-core machine: webhook p50 <= 2.0 s and
p95 <= 3.0 s; polling max <= P + 2.5 s.

    uv run --frozen python bench/push_to_live.py [--pushes 20] [--period 5] [--modes polling]
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path

from _fleet import (
    WEBHOOK_SECRET,
    CodeRepo,
    RunningFleet,
    latency_summary,
    push_hook,
    wait_asset_live,
    write_fleet,
)

from tests.e2e.conftest import with_asset


def measure(mode: str, pushes: int, period: float, rng: random.Random) -> list[float]:
    with tempfile.TemporaryDirectory(prefix=f"dagfleet-bench-{mode}-") as tmp:
        base = Path(tmp)
        repo = CodeRepo(base / "remotes")
        poll = 3600.0 if mode == "webhook" else period
        fleet_dir = write_fleet(
            base / "fleet",
            {
                "demo": {
                    "git_url": repo.url,
                    "module_name": "demo.definitions",
                    "poll_interval": poll,
                }
            },
            environments=[{"name": "A", "branch": "A"}],
        )
        fleet = RunningFleet(
            fleet_dir, extra=["--no-daemon"], env={"DAGFLEET_WEBHOOK_SECRET": WEBHOOK_SECRET}
        ).start()
        out: list[float] = []
        try:
            fleet.wait_loaded({"demo-A"}, timeout=600)
            for i in range(pushes):
                if mode == "polling":
                    # Right after a detection the next poll is a whole period away;
                    # a random wait puts the push at a random point of the period.
                    time.sleep(rng.uniform(0, period))
                name = f"pushed_{i}"
                repo.commit({"demo/definitions.py": with_asset(name)}, name)
                repo.push("A")
                start = time.monotonic()
                if mode == "webhook":
                    push_hook(fleet, repo)
                out.append(wait_asset_live(fleet, "demo-A", name, timeout=120) - start)
                time.sleep(0.5)
        finally:
            fleet.stop()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pushes", type=int, default=20, help="pushes per mode (default 20)")
    parser.add_argument(
        "--period", type=float, default=5.0, help="poll period P in seconds (default 5)"
    )
    parser.add_argument(
        "--modes",
        default="webhook,polling",
        help="comma-separated: webhook, polling (default both)",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the random push times (default 0)"
    )
    args = parser.parse_args()
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = [m for m in modes if m not in ("webhook", "polling")]
    if unknown:
        parser.error(f"--modes: unknown {', '.join(unknown)}; choose webhook, polling")
    rng = random.Random(args.seed)
    result: dict[str, object] = {"poll_period_seconds": args.period, "seed": args.seed}
    for mode in modes:
        result[mode] = latency_summary(measure(mode, args.pushes, args.period, rng))
    result["targets"] = {
        "webhook_p50": 2.0,
        "webhook_p95": 3.0,
        "polling_max": args.period + 2.5,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
