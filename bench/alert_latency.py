"""Alert latency: from `git push` of a broken commit (with a signed push webhook, polling
effectively off) to the Slack-shaped endpoint receiving the commit_rejected alert.

Each round pushes a commit with a syntax error, sends the webhook and times until the
local Slack incoming-webhook server (tests/support/alert_servers.py) gets the alert;
then pushes a fix (webhook again) and waits, untimed, for the "resolved" message so
the next round opens a new episode. One location, no daemon, a file:// remote.

Prints one JSON object: n, p50, p95 and max in seconds, the target (p50 <= 3 s), and
where the time goes: `sync` (the failed attempt's own seconds, from the publish
history, per step) and `after_sync` (the rest: webhook, queueing, the alert itself).

    uv run --frozen python bench/alert_latency.py [--pushes 10]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import httpx
import yaml
from _fleet import (
    WEBHOOK_SECRET,
    CodeRepo,
    RunningFleet,
    median,
    percentile,
    push_hook,
    write_fleet,
)

from tests.e2e.conftest import with_asset
from tests.support.alert_servers import AlertHttp


def wait_count(slack: AlertHttp, n: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while len(slack.at("/services/")) < n:
        if time.monotonic() > deadline:
            raise TimeoutError(f"message {n} not received after {timeout:.0f} s")
        time.sleep(0.01)


def attempt_of(fleet: RunningFleet, sha: str) -> dict[str, object]:
    """The failed attempt of `sha` in the publish history (its seconds and steps)."""
    found = httpx.get(f"{fleet.api}/locations/demo-A/history", params={"limit": 5}).json()
    return next(a for a in found if a["commit"] == sha)


def measure(pushes: int) -> tuple[list[float], list[dict[str, object]]]:
    slack = AlertHttp().start()
    with tempfile.TemporaryDirectory(prefix="dagfleet-bench-alerts-") as tmp:
        base = Path(tmp)
        repo = CodeRepo(base / "remotes")
        fleet_dir = write_fleet(
            base / "fleet",
            {
                "demo": {
                    "git_url": repo.url,
                    "module_name": "demo.definitions",
                    "poll_interval": 3600,
                }
            },
            environments=[{"name": "A", "branch": "A"}],
        )
        doc = yaml.safe_load((fleet_dir / "fleet.yaml").read_text())
        doc["alerts"] = {
            "channels": {"slack": {"slack_webhook": {"url": {"from_env": "BENCH_SLACK_URL"}}}},
            "policies": [{"name": "broken", "events": ["commit_rejected"], "channels": ["slack"]}],
        }
        (fleet_dir / "fleet.yaml").write_text(yaml.safe_dump(doc))
        env = {
            "DAGFLEET_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "BENCH_SLACK_URL": slack.slack_webhook_url,
        }
        fleet = RunningFleet(fleet_dir, extra=["--no-daemon"], env=env).start()
        out: list[float] = []
        attempts: list[dict[str, object]] = []
        try:
            fleet.wait_loaded({"demo-A"}, timeout=600)
            for i in range(pushes):
                bad = repo.commit({"demo/definitions.py": f"def broken_{i}(:\n"}, f"broken {i}")
                repo.push("A")
                start = time.monotonic()
                push_hook(fleet, repo)
                wait_count(slack, 2 * i + 1, 120)
                out.append(slack.at("/services/")[2 * i].at - start)
                attempts.append(attempt_of(fleet, bad))
                repo.commit({"demo/definitions.py": with_asset(f"fixed_{i}")}, f"fix {i}")
                repo.push("A")
                push_hook(fleet, repo)
                wait_count(slack, 2 * i + 2, 180)
                time.sleep(0.5)
        finally:
            fleet.stop()
            slack.stop()
    return out, attempts


def stats(values: list[float]) -> dict[str, float]:
    return {"p50": round(median(values), 2), "p95": round(percentile(values, 95), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pushes", type=int, default=10, help="broken pushes (default 10)")
    args = parser.parse_args()
    if args.pushes < 1:
        parser.error("--pushes: at least 1")
    values, attempts = measure(args.pushes)
    sync = [float(a["seconds"]) for a in attempts]  # type: ignore[arg-type]
    steps: dict[str, list[float]] = {}
    for a in attempts:
        for step in a["steps"]:  # type: ignore[attr-defined]
            steps.setdefault(step["step"], []).append(step["seconds"])
    result = {
        "n": len(values),
        "p50": round(median(values), 2),
        "p95": round(percentile(values, 95), 2),
        "max": round(max(values), 2),
        "target": {"p50": 3.0},
        "sync": {**stats(sync), "steps_p50": {k: round(median(v), 2) for k, v in steps.items()}},
        "after_sync": stats([v - s for v, s in zip(values, sync, strict=True)]),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
