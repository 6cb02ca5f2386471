"""fleet.yaml's `instance.dagster` in rendered deployments: Helm values that the official
chart's schema accepts, and the compose/ECS dagster.yaml that Dagster itself loads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from dagfleet.render.write import texts
from dagfleet.spec.defaults import default_fleet_document, medallion_repo_document
from tests.integration.test_render_validation import CHART, validate_chart_values
from tests.unit.render.fleets import make_fleet, render_all

pytestmark = pytest.mark.integration

SETTINGS: dict[str, Any] = {
    "run_monitoring": {"enabled": True, "start_timeout_seconds": 180, "max_runtime_seconds": 3600},
    "run_retries": {"enabled": True, "max_retries": 2},
    "retention": {"schedule": {"purge_after_days": 30}, "sensor": {"purge_after_days": 7}},
    "telemetry": {"enabled": False},
    "code_servers": {"reload_timeout": 120},
}


def rendered() -> dict[str, dict[str, str]]:
    doc = default_fleet_document()
    doc.setdefault("instance", {})["dagster"] = SETTINGS
    fleet = make_fleet(doc, [medallion_repo_document("https://git.example.com/m.git")])
    return {target: texts(files) for target, files in render_all(fleet).items()}


def test_helm_values_carry_the_settings_and_match_the_chart_schema() -> None:
    values = yaml.safe_load(rendered()["k8s"]["values.yaml"])
    validate_chart_values(values, CHART)
    assert values["dagsterDaemon"]["runMonitoring"]["maxRuntimeSeconds"] == 3600
    assert values["dagsterDaemon"]["runRetries"] == {"enabled": True, "maxRetries": 2}
    assert values["retention"]["schedule"] == {"purgeAfterDays": 30}
    assert values["telemetry"] == {"enabled": False}
    assert values["additionalInstanceConfig"] == {"code_servers": {"reload_timeout": 120}}


def _dagster_yaml(text: str) -> dict[str, Any]:
    """The DAGSTER_YAML a compose service or ECS task writes at start."""
    found: list[dict[str, Any]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "DAGSTER_YAML" and isinstance(value, str):
                    found.append(yaml.safe_load(value))
                elif key == "name" and value == "DAGSTER_YAML" and "value" in node:
                    found.append(yaml.safe_load(node["value"]))
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    for doc in yaml.safe_load_all(text):
        walk(doc)
    assert found, "no DAGSTER_YAML in the render"
    return found[0]


def test_compose_instance_is_loaded_by_dagster(tmp_path: Path) -> None:
    from dagster import DagsterInstance

    out = rendered()
    config = _dagster_yaml(out["compose"]["compose.yaml"])
    assert {k: config[k] for k in SETTINGS} == SETTINGS
    # Dagster loads it: the generated storage is swapped for SQLite (no Postgres here).
    config["storage"] = {"sqlite": {"base_dir": str(tmp_path / "storage")}}
    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump(config))
    instance = DagsterInstance.from_config(str(tmp_path))
    try:
        assert instance.run_monitoring_max_runtime_seconds == 3600
        assert instance.run_retries_max_retries == 2
    finally:
        instance.dispose()
    # ECS writes the same settings into its instance's dagster.yaml.
    assert "max_runtime_seconds: 3600" in out["ecs"]["template.yaml"]


def test_compose_passes_a_dollar_in_a_setting_through_unchanged() -> None:
    """Compose interpolates `$NAME` in service environments; a user's `$` must survive."""
    doc = default_fleet_document()
    doc.setdefault("instance", {})["dagster"] = {
        "python_logs": {"managed_python_loggers": ["team$logger"]}
    }
    fleet = make_fleet(doc, [medallion_repo_document("https://git.example.com/m.git")])
    text = texts(render_all(fleet)["compose"])["compose.yaml"]
    escaped = _dagster_yaml(text)
    assert escaped["python_logs"]["managed_python_loggers"] == ["team$$logger"]
    # What compose hands the container after its interpolation ($$ -> $):
    loaded = yaml.safe_load(yaml.safe_dump(escaped).replace("$$", "$"))
    assert loaded["python_logs"]["managed_python_loggers"] == ["team$logger"]
