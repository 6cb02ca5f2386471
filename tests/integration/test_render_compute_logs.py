"""Step logs of the rendered instances: written by a run, read back by another instance via S3.

Each render's compute-log section (the chart's `computeLogManager` value as the chart
templates it into dagster.yaml, ECS's and compose's dagster.yaml) configures a real
DagsterInstance against a real S3-compatible server (moto in server mode, its own
process). A real job runs on one instance (the run pod / run task); a second
instance from the same section, with a local cache directory of its own (the
webserver, which never sees the run's disk), reads the step's stdout and stderr
back through its compute log manager the way the UI does (`get_log_data`, a
subscription, the download URL).

The section is dagfleet_runtime's LocationS3ComputeLogManager: each run's logs
land under its location's `logs/` prefix (`<root>/<env>/<repo prefix>/logs/`),
a second location's under its own, a run of no known location under the
instance-wide prefix. Runs carry their location as the `dagfleet/location` tag
(runs started from Python) or, as runs launched from the UI do, as their origin.

Dagster's S3ComputeLogManager lives in dagster-aws, which the rendered images carry
and this project's dev dependencies include: these tests always run.
"""

from __future__ import annotations

import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster_aws.s3.compute_log_manager  # noqa: F401  (a dev dependency: never skipped)
import httpx
import pytest
import yaml
from dagster import (
    DagsterEventType,
    DagsterInstance,
    DagsterRun,
    DagsterRunStatus,
    execute_job,
    in_process_executor,
    job,
    op,
    reconstructable,
)
from dagster._core.remote_origin import (
    GrpcServerCodeLocationOrigin,
    RemoteJobOrigin,
    RemoteRepositoryOrigin,
)
from dagster._core.storage.compute_log_manager import CapturedLogData, ComputeIOType
from dagster._core.test_utils import create_run_for_test
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._core.workspace.load_target import PythonFileTarget

from dagfleet.render import compute_logs
from dagfleet.render.compose import render_compose
from dagfleet.render.ecs import render_ecs
from dagfleet.render.helm_values import helm_values
from dagfleet.render.k8s_location import playground_image
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


FLEET_ONLY = "fleet/_system/compute_logs/storage/"


def s3_fleet(tmp_path: Path, endpoint: str, playground: bool = False) -> Fleet:
    spec = FleetSpec(
        name="lake",
        storage=StorageSpec(root=f"s3://{BUCKET}/fleet", endpoint_url=endpoint),
        environments=[{"name": "A", "playground": playground}, {"name": "B"}],  # type: ignore[list-item]
    )
    repos = {
        "medallion": RepoSpec(name="medallion", git_url="https://git.example.com/m.git"),
        # a repo file's s3_prefix moves its logs/ with the rest of its storage
        "sales": RepoSpec(
            name="sales", git_url="https://git.example.com/s.git", s3_prefix="t/sales"
        ),
    }
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


def keys_of(s3: Any, run_id: str) -> list[str]:
    listing = s3.list_objects_v2(Bucket=BUCKET, Prefix="fleet/").get("Contents", [])
    return sorted(o["Key"] for o in listing if f"/{run_id}/" in o["Key"])


def read_back(reader: DagsterInstance, run_id: str) -> tuple[bytes, bytes]:
    """The step logs of a run as the UI gets them: `get_log_data`, then a subscription
    (which must see the same data) and the download URLs (fetched over HTTP)."""
    captured = reader.all_logs(run_id, of_type=DagsterEventType.LOGS_CAPTURED)
    file_keys = {e.dagster_event.logs_captured_data.file_key for e in captured}  # type: ignore[union-attr]
    assert file_keys, "the run recorded no captured logs"
    manager = reader.compute_log_manager
    stdout = stderr = b""
    for file_key in sorted(file_keys):
        log_key = [run_id, "compute_logs", file_key]
        data = manager.get_log_data(log_key)
        stdout += data.stdout or b""
        stderr += data.stderr or b""
        seen: list[CapturedLogData] = []
        subscription = manager.subscribe(log_key)
        subscription(seen.append)
        assert subscription.is_complete, log_key
        assert b"".join(d.stdout or b"" for d in seen) == (data.stdout or b"")
        subscription.dispose()
        url = manager.download_url_for_type(log_key, ComputeIOType.STDOUT)
        if data.stdout:
            assert url and httpx.get(url, timeout=30).content == data.stdout
    return stdout, stderr


def run_and_read_back(
    tmp_path: Path, section: dict[str, Any], s3: Any, location: str | None = None
) -> str:
    """Run the job on a "run pod" instance (as `location`, a tag, when given), read its
    step logs from a "webserver" one; returns the common directory of its keys in the bucket."""
    tags = {"dagfleet/location": location} if location else {}
    with instance(tmp_path / "run-pod", section) as writer:
        result = execute_job(reconstructable(talking_job), instance=writer, tags=tags)
        assert result.success
        run_id = result.run_id
    keys = keys_of(s3, run_id)
    assert keys, f"no step logs of {run_id} in the bucket"
    where = {k.split(f"/{run_id}/")[0] + "/" for k in keys}
    assert len(where) == 1, keys
    with instance(tmp_path / "webserver", section) as reader:
        stdout, stderr = read_back(reader, run_id)
    assert STDOUT_MARK.encode() in stdout
    assert STDERR_MARK.encode() in stderr
    (prefix,) = where
    assert all(k.startswith(f"{prefix}{run_id}/compute_logs/") for k in keys), keys
    return prefix


def test_the_chart_values_give_the_ui_each_locations_step_logs_from_its_prefix(
    tmp_path: Path, s3_endpoint: str, s3: Any
) -> None:
    fleet = s3_fleet(tmp_path, s3_endpoint)
    values = helm_values(
        fleet, K8sOptions(registry="registry.example.com/lake", image_tag="c0ffee")
    )
    assert values["computeLogManager"]["type"] == "CustomComputeLogManager"
    # The webserver and daemon load the manager too: they run a repo image, which carries it.
    image = {
        "repository": "registry.example.com/lake/medallion",
        "tag": "c0ffee",
        "pullPolicy": "Always",
    }
    assert values["dagsterWebserver"]["image"] == image
    assert values["dagsterDaemon"]["image"] == image
    section = chart_section(fleet)
    assert (section["module"], section["class"]) == (compute_logs.MODULE, compute_logs.CLASS)
    assert section["config"]["endpoint_url"] == s3_endpoint
    assert (
        run_and_read_back(tmp_path, section, s3, "medallion-A") == "fleet/A/repos/medallion/logs/"
    )
    # a second location: its own prefix, the repo's s3_prefix
    assert run_and_read_back(tmp_path, section, s3, "sales-B") == "fleet/B/t/sales/logs/"
    # a run of no known location: the instance-wide prefix
    assert run_and_read_back(tmp_path, section, s3) == FLEET_ONLY


def test_a_run_launched_from_the_ui_is_routed_by_its_origin(
    tmp_path: Path, s3_endpoint: str, s3: Any
) -> None:
    """UI runs carry their code location as their origin (a tag cannot redirect them)."""
    section = chart_section(s3_fleet(tmp_path, s3_endpoint))
    origin = RemoteJobOrigin(
        repository_origin=RemoteRepositoryOrigin(
            code_location_origin=GrpcServerCodeLocationOrigin(
                host="localhost", port=4000, location_name="sales-A"
            ),
            repository_name="__repository__",
        ),
        job_name="talking_job",
    )
    with instance(tmp_path / "run-pod", section) as writer:
        run = writer.add_run(
            DagsterRun(
                job_name="talking_job", remote_job_origin=origin, tags={"dagfleet/location": "x-B"}
            )
        )
        manager = writer.compute_log_manager
        key = manager.build_log_key_for_run(run.run_id, "step")
        with manager.capture_logs(key):
            print(STDOUT_MARK, flush=True)
    keys = keys_of(s3, run.run_id)
    assert keys == [f"fleet/A/t/sales/logs/{run.run_id}/compute_logs/step.out"], keys
    with instance(tmp_path / "webserver", section) as reader:
        data = reader.compute_log_manager.get_log_data(key)
        assert data.stdout is not None and STDOUT_MARK.encode() in data.stdout
        listed = reader.compute_log_manager.get_log_keys_for_log_key_prefix(
            [run.run_id, "compute_logs"], ComputeIOType.STDOUT
        )
        assert listed == [key]
        reader.compute_log_manager.delete_logs(prefix=[run.run_id, "compute_logs"])
    assert keys_of(s3, run.run_id) == []


LAUNCHED_CODE = textwrap.dedent(
    f"""
    import sys
    from dagster import Definitions, job, op

    @op
    def talk():
        print({STDOUT_MARK!r}, flush=True)
        print({STDERR_MARK!r}, file=sys.stderr, flush=True)

    @job
    def talking_job():
        talk()

    defs = Definitions(jobs=[talking_job])
    """
)


def test_a_run_launched_through_a_code_server_logs_under_its_location(
    tmp_path: Path, s3_endpoint: str, s3: Any
) -> None:
    """As in a cluster: the run is launched through the location's code server (a real
    gRPC server process), its run worker and step processes load the instance on their
    own, and a webserver instance reads the logs back from S3."""
    section = chart_section(s3_fleet(tmp_path, s3_endpoint))
    code = tmp_path / "code"
    code.mkdir()
    (code / "defs.py").write_text(LAUNCHED_CODE)
    started = time.monotonic()
    with instance(tmp_path / "launcher", section) as launcher:
        target = PythonFileTarget(str(code / "defs.py"), None, str(code), "sales-B")
        with WorkspaceProcessContext(launcher, target) as workspace:
            request = workspace.create_request_context()
            repo = request.get_code_location("sales-B").get_repository("__repository__")
            remote_job = repo.get_full_job("talking_job")
            run = create_run_for_test(
                launcher,
                job_name="talking_job",
                remote_job_origin=remote_job.get_remote_origin(),
                job_code_origin=remote_job.get_python_origin(),
                job_snapshot=remote_job.job_snapshot,
            )
            launcher.launch_run(run.run_id, request)
            deadline = time.monotonic() + 300  # a hang fails; the time is printed
            while not (finished := launcher.get_run_by_id(run.run_id)) or not finished.is_finished:
                assert time.monotonic() < deadline, "the launched run did not finish"
                time.sleep(0.5)
            assert finished.status == DagsterRunStatus.SUCCESS, finished.status
    print(f"launched run finished in {time.monotonic() - started:.1f}s")
    keys = keys_of(s3, run.run_id)
    assert keys and all(
        k.startswith(f"fleet/B/t/sales/logs/{run.run_id}/compute_logs/") for k in keys
    ), keys
    with instance(tmp_path / "webserver", section) as reader:
        stdout, stderr = read_back(reader, run.run_id)
    assert STDOUT_MARK.encode() in stdout and STDERR_MARK.encode() in stderr


def test_the_ui_reads_a_running_steps_partial_upload_from_its_location(
    tmp_path: Path, s3_endpoint: str, s3: Any
) -> None:
    """While a step runs, its output so far is uploaded every `upload_interval` seconds
    (`.partial` keys, under the location's prefix too) and the webserver shows it."""
    section = chart_section(s3_fleet(tmp_path, s3_endpoint))
    section = {**section, "config": {**section["config"], "upload_interval": 1}}
    with (
        instance(tmp_path / "run-pod", section) as writer,
        instance(tmp_path / "webserver", section) as reader,
    ):
        run = writer.add_run(DagsterRun(job_name="j", tags={"dagfleet/location": "medallion-A"}))
        key = writer.compute_log_manager.build_log_key_for_run(run.run_id, "step")
        started = time.monotonic()
        with writer.compute_log_manager.capture_logs(key):
            print(STDOUT_MARK, flush=True)
            deadline = time.monotonic() + 120  # a hang fails; the time is printed
            while True:
                data = reader.compute_log_manager.get_log_data(key)
                if data.stdout and STDOUT_MARK.encode() in data.stdout:
                    break
                assert time.monotonic() < deadline, "the running step's output never showed"
                time.sleep(0.2)
            assert not reader.compute_log_manager.is_capture_complete(key)
            partial = keys_of(s3, run.run_id)
        print(f"partial output readable after {time.monotonic() - started:.1f}s")
    logs = f"fleet/A/repos/medallion/logs/{run.run_id}/compute_logs/"
    assert f"{logs}step.out.partial" in partial, partial


def test_the_ecs_instance_gives_the_ui_the_step_logs_of_a_run_task(
    tmp_path: Path, s3_endpoint: str, s3: Any
) -> None:
    fleet = s3_fleet(tmp_path, s3_endpoint)
    section = ecs_section(fleet)
    assert section == chart_section(fleet)  # one instance for the fleet, the same routing
    assert run_and_read_back(tmp_path, section, s3, "sales-A") == "fleet/A/t/sales/logs/"


def test_compose_routes_per_location_and_keeps_its_fallback_under_the_environment(
    tmp_path: Path, s3_endpoint: str, s3: Any
) -> None:
    fleet = s3_fleet(tmp_path, s3_endpoint)
    section = compose_section(fleet, "B")
    assert section["class"] == compute_logs.CLASS
    assert (
        run_and_read_back(tmp_path, section, s3, "medallion-B") == "fleet/B/repos/medallion/logs/"
    )
    assert run_and_read_back(tmp_path, section, s3) == "fleet/B/system/compute_logs/storage/"
    assert compose_section(fleet, "A")["config"]["prefix"] == "fleet/A/system/compute_logs"


def test_a_playground_on_kubernetes_is_routed_too(
    tmp_path: Path, s3_endpoint: str, s3: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A playground's pods run the first repo's image (it carries dagfleet-runtime), so a
    fleet with a playground keeps the routed manager, and the playground's step logs
    land under its own `logs/`."""
    fleet = s3_fleet(tmp_path, s3_endpoint, playground=True)
    with caplog.at_level("WARNING", logger="dagfleet.render.compute_logs"):
        values = helm_values(fleet, K8sOptions())
    assert values["computeLogManager"]["type"] == "CustomComputeLogManager"
    assert not caplog.records
    opts = K8sOptions()
    assert playground_image(fleet, opts) == opts.repo_image("medallion")
    section = chart_section(fleet)
    assert run_and_read_back(tmp_path, section, s3, "playground-A") == (
        "fleet/A/repos/playground/logs/"
    )


def test_fleet_yaml_compute_logs_wins_over_the_rendered_manager(tmp_path: Path) -> None:
    spec = FleetSpec(
        name="lake",
        storage=StorageSpec(root="s3://b/fleet"),
        environments=[{"name": "A"}],  # type: ignore[list-item]
        instance={"dagster": {"compute_logs": {"module": "m", "class": "C", "config": {}}}},  # type: ignore[arg-type]
    )
    repos = {"medallion": RepoSpec(name="medallion", git_url="https://git.example.com/m.git")}
    fleet = Fleet(root=str(tmp_path), spec=spec, repos=repos)
    values = helm_values(fleet, K8sOptions())
    assert "computeLogManager" not in values and "image" not in values["dagsterWebserver"]
    assert values["additionalInstanceConfig"]["compute_logs"]["class"] == "C"
    assert ecs_section(fleet)["class"] == "C"
    assert compose_section(fleet, "A")["class"] == "C"


def test_a_local_storage_root_renders_no_s3_manager_on_kubernetes(tmp_path: Path) -> None:
    spec = FleetSpec(name="lake", environments=[{"name": "A"}])  # type: ignore[list-item]
    fleet = Fleet(root=str(tmp_path), spec=spec, repos={})
    assert "computeLogManager" not in helm_values(fleet, K8sOptions())
