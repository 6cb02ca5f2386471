"""ECS keeps dagfleet's promises where it can: a task definition per commit, healthy only
once the definitions loaded, and a deployment that rolls back when the new task never is.
Also the step-log permissions: run tasks upload, the webserver reads."""

from __future__ import annotations

import json
from typing import Any

import pytest

from dagfleet.render import EcsOptions, render_ecs
from dagfleet.render.ecs import PROBE_FLAG
from tests.unit.render.fleets import default_fleet, three_repo_fleet

SHA = "0123456789abcdef0123456789abcdef01234567"


def resources(opts: EcsOptions | None = None, fleet: Any = None) -> dict[str, Any]:
    template = render_ecs(fleet or default_fleet(), opts or EcsOptions())["template.yaml"]
    return dict(template["Resources"])


def code_server(res: dict[str, Any], lid: str) -> dict[str, Any]:
    (container,) = res[f"TaskDefinition{lid}"]["Properties"]["ContainerDefinitions"]
    return dict(container)


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {e["Name"]: e["Value"] for e in container["Environment"]}


def test_a_pinned_location_runs_its_commits_image_and_carries_the_commit() -> None:
    opts = EcsOptions(registry="registry.example.com/data", commits={"medallion-A": SHA})
    res = resources(opts)
    pinned, other = code_server(res, "MedallionA"), code_server(res, "MedallionB")
    image = f"registry.example.com/data/medallion:{SHA}"
    assert pinned["Image"] == image
    assert env_of(pinned)["DAGFLEET_COMMIT"] == SHA
    # Runs start from the code server's image: the run executes the same commit, and
    # the run task gets the commit from the container context.
    assert env_of(pinned)["DAGSTER_CONTAINER_IMAGE"] == image
    context = json.loads(env_of(pinned)["DAGSTER_CONTAINER_CONTEXT"]["Fn::Sub"])
    assert context["ecs"]["env_vars"] == [f"DAGFLEET_COMMIT={SHA}"]
    other_context = json.loads(env_of(other)["DAGSTER_CONTAINER_CONTEXT"]["Fn::Sub"])
    assert "env_vars" not in other_context["ecs"]
    assert res["TaskDefinitionMedallionA"]["Properties"]["Tags"] == [
        {"Key": "dagfleet:commit", "Value": SHA}
    ]
    # An unlisted location keeps the image tag and says nothing about a commit.
    assert other["Image"] == "registry.example.com/data/medallion:latest"
    assert "DAGFLEET_COMMIT" not in env_of(other)
    assert "Tags" not in res["TaskDefinitionMedallionB"]["Properties"]


def test_a_new_commit_changes_the_task_definition() -> None:
    """CloudFormation registers a new revision when the definition's properties change."""
    one = resources(EcsOptions(commits={"medallion-A": SHA}))["TaskDefinitionMedallionA"]
    two = resources(EcsOptions(commits={"medallion-A": "f" * 40}))["TaskDefinitionMedallionA"]
    assert one != two
    assert one["Properties"]["Family"] == two["Properties"]["Family"]


@pytest.mark.parametrize("bad", ["main", SHA[:12], SHA.upper()])
def test_a_commit_that_is_not_a_full_sha_is_refused_with_the_fix(bad: str) -> None:
    with pytest.raises(ValueError, match=r"commits: medallion-A: .* full 40-hex commit"):
        resources(EcsOptions(commits={"medallion-A": bad}))


def test_code_servers_are_healthy_only_once_definitions_loaded() -> None:
    for lid in ("MedallionA", "MedallionB"):
        check = code_server(resources(), lid)["HealthCheck"]
        assert check["Command"] == ["CMD", "python", "/opt/dagfleet/launch.py", PROBE_FLAG]
        assert "grpc-health-check" not in check["Command"]


def test_code_server_services_roll_back_a_deployment_that_never_turns_healthy() -> None:
    res = resources(fleet=three_repo_fleet())
    code_services = [
        r
        for k, r in res.items()
        if k.startswith("Service")
        and r["Properties"]["NetworkConfiguration"]["AwsvpcConfiguration"]["SecurityGroups"]
        == [{"Ref": "CodeServerSecurityGroup"}]
    ]
    assert code_services
    for svc in code_services:
        config = svc["Properties"]["DeploymentConfiguration"]
        assert config["DeploymentCircuitBreaker"] == {"Enable": True, "Rollback": True}
        # The old task serves until the new one is healthy.
        assert config["MinimumHealthyPercent"] == 100


def test_run_tasks_may_upload_step_logs_and_the_webserver_may_read_them() -> None:
    res = resources()
    role = res["TaskRoleMedallionA"]["Properties"]["Policies"][0]["PolicyDocument"]
    (write,) = [s for s in role["Statement"] if s["Sid"] == "StepLogsWrite"]
    logs = "arn:${AWS::Partition}:s3:::dagster-storage/_system/compute_logs/storage/*"
    assert write["Resource"] == {"Fn::Sub": logs}
    assert "s3:ListBucket" not in write["Action"] and "s3:DeleteObject" not in write["Action"]
    policies = res["TaskRoleInstance"]["Properties"]["Policies"]
    (read,) = [p["PolicyDocument"] for p in policies if p["PolicyName"] == "step-logs"]
    (get,) = [s for s in read["Statement"] if s["Sid"] == "StepLogsRead"]
    # every location's logs/ (its runs' step logs) and the instance-wide prefix (ticks)
    arn = "arn:${AWS::Partition}:s3:::dagster-storage"
    routed = [{"Fn::Sub": f"{arn}/{env}/repos/medallion/logs/*"} for env in ("A", "B")]
    assert get["Resource"] == [*routed, {"Fn::Sub": logs}] and "s3:GetObject" in get["Action"]
