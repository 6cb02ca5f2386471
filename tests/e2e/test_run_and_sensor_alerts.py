"""Scenario: runs and sensors are watched centrally, with no change to user code: a
failing run is one run_failed alert and the job's next successful run one "resolved";
a sensor whose evaluation raises is one tick_failed alert and its next good tick one
"resolved". Runs launched by hand and ticks evaluated by the daemon are both covered."""

from __future__ import annotations

import time
from pathlib import Path

import yaml

from tests.e2e.conftest import demo_fleet
from tests.support.alert_servers import HOOK_SECRET, AlertHttp
from tests.support.fleetproc import wait_for
from tests.support.gitrepo import TRIVIAL_DEFS, CodeRepo

FLAKY = """
import os
from pathlib import Path

from dagster import DefaultSensorStatus, SkipReason, job, op, sensor


def _broken() -> bool:
    return Path(os.environ["FLAKY_FLAG"]).exists()


@op
def maybe_fail() -> None:
    if _broken():
        raise RuntimeError("the flag says fail")


@job
def flaky_job():
    maybe_fail()


@sensor(job=flaky_job, minimum_interval_seconds=2, default_status=DefaultSensorStatus.RUNNING)
def flaky_sensor(context):
    if _broken():
        raise RuntimeError("the sensor cannot reach its source")
    return SkipReason("nothing new")
"""


def definitions() -> str:
    return (FLAKY + TRIVIAL_DEFS).replace(
        "defs = Definitions(\n    assets=[one, two, three], jobs=[trivial_job],",
        "defs = Definitions(\n    assets=[one, two, three], jobs=[trivial_job, flaky_job],\n"
        "    sensors=[flaky_sensor],",
    )


def test_failing_runs_and_sensors_alert_once_and_resolve_once(
    tmp_path: Path, code_repo: CodeRepo, start_fleet
) -> None:
    hook = AlertHttp().start()
    try:
        flag = tmp_path / "broken"
        flag.write_text("yes")
        assert "sensors=[flaky_sensor]" in definitions()
        code_repo.commit({"demo/definitions.py": definitions()}, "a flaky job and sensor")
        code_repo.push("A")
        fleet_dir = demo_fleet(
            tmp_path,
            code_repo,
            environments=["A"],
            environment=[{"name": "FLAKY_FLAG", "value": str(flag)}],
        )
        doc = yaml.safe_load((fleet_dir / "fleet.yaml").read_text())
        doc["alerts"] = {
            "channels": {
                "hook": {"webhook": {"url": f"{hook.url}/hook", "secret": {"from_env": "SECRET"}}}
            },
            "policies": [
                {"name": "runs", "events": ["run_failed"], "channels": ["hook"]},
                {"name": "ticks", "events": ["tick_failed"], "channels": ["hook"]},
            ],
        }
        (fleet_dir / "fleet.yaml").write_text(yaml.safe_dump(doc))
        fleet = start_fleet(fleet_dir, env={"SECRET": HOOK_SECRET})
        fleet.wait_loaded({"demo-A"})

        def sent(event: str, state: str) -> list[dict[str, object]]:
            alerts = [a for r in hook.at("/hook") for a in r.json["alerts"]]
            return [a for a in alerts if a["event"] == event and a["state"] == state]

        # A run that fails, launched by hand: one alert, linked to the run.
        failed = fleet.gql.launch("demo-A", "flaky_job")
        assert fleet.gql.wait_run(failed) == "FAILURE"
        ended = time.monotonic()
        wait_for(lambda: sent("run_failed", "firing"), 60, "the run_failed alert")
        print(f"failed run -> alert received: {time.monotonic() - ended:.2f}s")
        [alert] = sent("run_failed", "firing")
        links = alert["links"]
        assert isinstance(links, dict) and str(links["run"]).endswith(f"/runs/{failed}")
        # The daemon evaluates the sensor, which raises: one tick_failed alert.
        wait_for(lambda: sent("tick_failed", "firing"), 180, "the tick_failed alert")

        # Fixed: the next run succeeds and the next tick skips cleanly; each resolves.
        flag.unlink()
        fixed = fleet.gql.launch("demo-A", "flaky_job")
        assert fleet.gql.wait_run(fixed) == "SUCCESS"
        wait_for(lambda: sent("run_failed", "resolved"), 60, "run_failed resolved")
        wait_for(lambda: sent("tick_failed", "resolved"), 120, "tick_failed resolved")
        time.sleep(6)  # a few more ticks and polls: nothing is sent twice
        for event in ("run_failed", "tick_failed"):
            assert len(sent(event, "firing")) == 1, event
            assert len(sent(event, "resolved")) == 1, event
        assert all(r.verified for r in hook.at("/hook"))
    finally:
        hook.stop()
