"""Step logs of the rendered instances: written by a run, read back by another instance via S3.

Each render's compute-log section (the chart's `computeLogManager` value as the chart
templates it into dagster.yaml, ECS's and compose's dagster.yaml) configures a real
DagsterInstance against a real S3-compatible server (moto in server mode, its own
process). A real job runs on one instance (the run pod / run task); a second
instance from the same section, with a local cache directory of its own (the
webserver, which never sees the run's disk), reads the step's stdout and stderr
back through its compute log manager, the way the UI does.

Dagster's S3ComputeLogManager lives in dagster-aws, which the rendered images carry
and this project's dev dependencies include: these tests always run.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster_aws.s3.compute_log_manager  # noqa: F401  (a dev dependency: never skipped)
import pytest
import yaml
from dagster import (
    DagsterEventType,
    DagsterInstance,
    execute_job,
    in_process_executor,
    job,
    op,
    reconstructable,
)

from dagfleet.render import compute_logs
from dagfleet.render.compose import render_compose
from dagfleet.render.ecs import render_ecs
from dagfleet.render.helm_values import helm_values
from dagfleet.render.options import ComposeOptions, EcsOptions, K8sOptions
from dagfleet.spec import Fleet, FleetSpec, RepoSpec, StorageSpec
from tests.support.s3 import TEST_CREDENTIALS, client_with_bucket, moto_server

pytestmark = [pytest.mark.integration, pytest.mark.slow]

BUCKET = "dagfleet-step-logs"
STDOUT_MARK = "stdout of a step in a run pod"
STDERR_MARK = "stderr of a step in a run pod"


@op
def talk() -> None:
    print(STDOUT_MARK, flush=True)
    print(STDERR_MARK, file=sys.stderr, flush=True)


@job(executor_def=in_process_executor)
def talking_job() -> None:
    talk()


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    with moto_server() as url:
        yield url


@pytest.fixture
def s3(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    for key, value in TEST_CREDENTIALS.items():
        monkeypatch.setenv(key, value)
    return client_with_bucket(s3_endpoint, BUCKET)


def s3_fleet(tmp_path: Path, endpoint: str) -> Fleet:
    spec = FleetSpec(
        name="lake",
        storage=StorageSpec(root=f"s3://{BUCKET}/fleet", endpoint_url=endpoint),
        environments=[{"name": "A"}, {"name": "B"}],  # type: ignore[list-item]
    )
    repos = {"medallion": RepoSpec(name="medallion", git_url="https://git.example.com/m.git")}
    return Fleet(root=str(tmp_path / "fleet"), spec=spec, repos=repos)


def chart_section(fleet: Fleet) -> dict[str, Any]:
    values = helm_values(fleet, K8sOptions())
    return compute_logs.from_chart_values(values["computeLogManager"])


def ecs_section(fleet: Fleet) -> dict[str, Any]:
    template = render_ecs(fleet, EcsOptions())["template.yaml"]
    task = template["Resources"]["TaskDefinitionWebserver"]["Properties"]
    (webserver,) = [d for d in task["ContainerDefinitions"] if d["Name"] == "webserver"]
    (text,) = [e["Value"] for e in webserver["Environment"] if e["Name"] == "DAGSTER_YAML"]
    return dict(yaml.safe_load(text)["compute_logs"])


def compose_section(fleet: Fleet, env: str) -> dict[str, Any]:
    compose = render_compose(fleet, ComposeOptions())["compose.yaml"]
    text = compose["services"][f"webserver-{env.lower()}"]["environment"]["DAGSTER_YAML"]
    # compose escapes `$` as `$$` in values; a section with none reads back unchanged.
    return dict(yaml.safe_load(text.replace("$$", "$"))["compute_logs"])


def instance(home: Path, section: dict[str, Any]) -> DagsterInstance:
    """SQLite run storage shared by writer and reader (the instance's database), the
    rendered compute-log section with a local cache directory of this instance's own."""
    config = {
        "storage": {"sqlite": {"base_dir": str(home.parent / "storage")}},
        "compute_logs": {**section, "config": {**section["config"], "local_dir": str(home)}},
        "telemetry": {"enabled": False},
    }
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    return DagsterInstance.from_config(str(home))


def run_and_read_back(tmp_path: Path, section: dict[str, Any], s3: Any) -> str:
    """Run the job on a "run pod" instance, read its step logs from a "webserver" one;
    returns where in the bucket the logs are."""
    with instance(tmp_path / "run-pod", section) as writer:
        result = execute_job(reconstructable(talking_job), instance=writer)
        assert result.success
        run_id = result.run_id
    prefix = compute_logs.log_keys_prefix(section["config"])
    keys = [
        o["Key"]
        for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])
        if run_id in o["Key"]
    ]
    assert keys and all(k.startswith(f"{prefix}{run_id}/compute_logs/") for k in keys), keys
    with instance(tmp_path / "webserver", section) as reader:
        captured = reader.all_logs(run_id, of_type=DagsterEventType.LOGS_CAPTURED)
        file_keys = {e.dagster_event.logs_captured_data.file_key for e in captured}  # type: ignore[union-attr]
        assert file_keys, "the run recorded no captured logs"
        stdout = b""
        stderr = b""
        for file_key in file_keys:
            data = reader.compute_log_manager.get_log_data([run_id, "compute_logs", file_key])
            stdout += data.stdout or b""
            stderr += data.stderr or b""
    assert STDOUT_MARK.encode() in stdout
    assert STDERR_MARK.encode() in stderr
    return prefix


def test_the_chart_values_give_the_ui_the_step_logs_of_a_run_pod(
    tmp_path: Path, s3_endpoint: str, s3: Any
) -> None:
    fleet = s3_fleet(tmp_path, s3_endpoint)
    section = chart_section(fleet)
    assert section["class"] == "S3ComputeLogManager"
    assert section["config"]["endpoint_url"] == s3_endpoint
    prefix = run_and_read_back(tmp_path, section, s3)
    assert prefix == "fleet/_system/compute_logs/storage/"


def test_the_ecs_instance_gives_the_ui_the_step_logs_of_a_run_task(
    tmp_path: Path, s3_endpoint: str, s3: Any
) -> None:
    fleet = s3_fleet(tmp_path, s3_endpoint)
    section = ecs_section(fleet)
    assert section == chart_section(fleet)  # one instance for the fleet, one prefix
    run_and_read_back(tmp_path, section, s3)


def test_compose_keeps_each_environments_step_logs_under_its_system_prefix(
    tmp_path: Path, s3_endpoint: str, s3: Any
) -> None:
    fleet = s3_fleet(tmp_path, s3_endpoint)
    section = compose_section(fleet, "B")
    prefix = run_and_read_back(tmp_path, section, s3)
    assert prefix == "fleet/B/system/compute_logs/storage/"
    assert compose_section(fleet, "A")["config"]["prefix"] == "fleet/A/system/compute_logs"


def test_a_local_storage_root_renders_no_s3_manager_on_kubernetes(tmp_path: Path) -> None:
    spec = FleetSpec(name="lake", environments=[{"name": "A"}])  # type: ignore[list-item]
    fleet = Fleet(root=str(tmp_path), spec=spec, repos={})
    assert "computeLogManager" not in helm_values(fleet, K8sOptions())
