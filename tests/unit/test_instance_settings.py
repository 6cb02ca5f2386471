"""fleet.yaml's `instance.dagster`: checked by Dagster's own instance schema, merged into
dagster.yaml, carried into the Helm values. Imports Dagster (about 2 s)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from dagfleet.render.helm_values import instance_values
from dagfleet.runtime.instance import dagster_yaml, foreign_dagster_home
from dagfleet.spec import Fleet, FleetSpec, SpecError, load_fleet

pytestmark = pytest.mark.unit


def write_fleet(root: Path, dagster: Any, **instance: Any) -> Path:
    doc = {"environments": [{"name": "A"}], "instance": {"dagster": dagster, **instance}}
    (root / "fleet.yaml").write_text(yaml.safe_dump(doc))
    return root


def problems(root: Path) -> list[str]:
    with pytest.raises(SpecError) as err:
        load_fleet(root)
    return [str(p) for p in err.value.problems]


@pytest.mark.parametrize(
    ("case", "dagster", "expected"),
    [
        (
            "misspelt section",
            {"run_monitering": {"enabled": True}},
            "fleet.yaml: instance.dagster.run_monitering: unknown Dagster instance setting: "
            "remove it or check its spelling (did you mean `run_monitoring`?)",
        ),
        (
            "misspelt key inside a section",
            {"run_monitoring": {"max_runtim_seconds": 60}},
            "fleet.yaml: instance.dagster.run_monitoring.max_runtim_seconds: unknown Dagster "
            "instance setting: remove it or check its spelling "
            "(did you mean `max_runtime_seconds`?)",
        ),
        (
            "wrong type",
            {"run_monitoring": {"enabled": "yes"}},
            "fleet.yaml: instance.dagster.run_monitoring.enabled: 'yes' is not a Bool: "
            "give a value of type Bool",
        ),
        (
            "wrong type deep inside",
            {"retention": {"schedule": {"purge_after_days": "a week"}}},
            "fleet.yaml: instance.dagster.retention.schedule.purge_after_days: 'a week' is not "
            "a Int: give a value of type Int",
        ),
        (
            "required by dagster",
            {"retention": {"schedule": {}}},
            "fleet.yaml: instance.dagster.retention.schedule.purge_after_days: required by "
            "Dagster: add it",
        ),
    ],
)
def test_dagster_refuses_bad_settings_at_load(
    tmp_path: Path, case: str, dagster: dict[str, Any], expected: str
) -> None:
    assert problems(write_fleet(tmp_path, dagster)) == [expected], case


@pytest.mark.parametrize(
    ("key", "fix"),
    [
        ("storage", "instance.postgres"),
        ("run_storage", "instance.postgres"),
        ("event_log_storage", "instance.postgres"),
        ("schedule_storage", "instance.postgres"),
        ("compute_logs", "storage.root"),
        ("local_artifact_storage", "storage.root"),
        ("run_launcher", "code server"),
        ("run_coordinator", "instance.run_queue"),
        ("run_queue", "instance.run_queue"),
    ],
)
def test_keys_dagfleet_manages_are_refused_with_what_to_use(
    tmp_path: Path, key: str, fix: str
) -> None:
    found = problems(write_fleet(tmp_path, {key: {"module": "m", "class": "C"}}))
    assert len(found) == 1 and found[0].startswith(f"fleet.yaml: instance.dagster.{key}: ")
    assert fix in found[0]


def test_concurrency_runs_conflicts_with_the_run_queue(tmp_path: Path) -> None:
    settings = {"concurrency": {"runs": {"max_concurrent_runs": 3}}}
    load_fleet(write_fleet(tmp_path, settings))  # alone: fine
    found = problems(write_fleet(tmp_path, settings, run_queue={"max_concurrent_runs": 2}))
    assert len(found) == 1 and "instance.dagster.concurrency" in found[0]
    assert "instance.run_queue" in found[0]


SETTINGS: dict[str, Any] = {
    "run_monitoring": {"enabled": True, "start_timeout_seconds": 180, "max_runtime_seconds": 3600},
    "run_retries": {"enabled": True, "max_retries": 2},
    "retention": {"schedule": {"purge_after_days": 30}, "sensor": {"purge_after_days": 7}},
    "telemetry": {"enabled": True},
    "nux": {"enabled": False},
    "code_servers": {"reload_timeout": 120},
}


def fleet(dagster: dict[str, Any]) -> Fleet:
    spec = FleetSpec.model_validate(
        {"environments": [{"name": "A"}], "instance": {"dagster": dagster}}
    )
    return Fleet(root="/fleet", spec=spec)


def test_settings_load_and_merge_over_the_generated_instance(tmp_path: Path) -> None:
    loaded = load_fleet(write_fleet(tmp_path, SETTINGS))
    config = dagster_yaml(loaded, Path("/home"), {})
    assert {k: config[k] for k in SETTINGS} == SETTINGS  # telemetry: the user's wins
    # What dagfleet manages is still there and still dagfleet's.
    assert config["storage"] == {"sqlite": {"base_dir": "/home/storage"}}
    assert config["run_coordinator"]["class"] == "TaggingRunCoordinator"
    assert config["run_launcher"]["class"] == "DefaultRunLauncher"


def test_no_settings_leave_dagster_yaml_as_before() -> None:
    config = dagster_yaml(fleet({}), Path("/home"), {})
    assert list(config) == [
        "telemetry",
        "storage",
        "run_coordinator",
        "run_launcher",
        "local_artifact_storage",
    ]
    assert config["telemetry"] == {"enabled": False}


def test_helm_values_carry_the_settings_the_chart_has() -> None:
    values = instance_values(SETTINGS)
    assert values["dagsterDaemon"] == {
        "runMonitoring": {"enabled": True, "startTimeoutSeconds": 180, "maxRuntimeSeconds": 3600},
        "runRetries": {"enabled": True, "maxRetries": 2},
    }
    assert values["retention"] == {
        "enabled": True,
        "schedule": {"purgeAfterDays": 30},
        "sensor": {"purgeAfterDays": 7},
    }
    assert values["telemetry"] == {"enabled": True}
    # Sections without chart values reach the chart's dagster.yaml unchanged.
    assert values["additionalInstanceConfig"] == {
        "nux": {"enabled": False},
        "code_servers": {"reload_timeout": 120},
    }
    assert instance_values({}) == {}


def test_helm_render_says_what_the_chart_cannot_carry(caplog: pytest.LogCaptureFixture) -> None:
    settings = {"run_monitoring": {"enabled": True, "cancellation_thread_poll_interval_seconds": 5}}
    values = instance_values(settings)
    assert values["dagsterDaemon"]["runMonitoring"] == {"enabled": True}
    assert (
        "instance.dagster.run_monitoring.cancellation_thread_poll_interval_seconds" in caplog.text
    )


def test_a_foreign_dagster_home_is_named_in_one_warning(tmp_path: Path) -> None:
    home = tmp_path / ".dagfleet" / "dagster_home"
    assert foreign_dagster_home({}, home) is None
    assert foreign_dagster_home({"DAGSTER_HOME": str(home)}, home) is None
    warning = foreign_dagster_home({"DAGSTER_HOME": "/opt/dagster"}, home)
    assert warning is not None and "/opt/dagster" in warning
    assert "instance.dagster" in warning and "fleet.yaml" in warning
