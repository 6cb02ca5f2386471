"""CloudFormation building blocks for `ecs.py`: roles, prefix policies, logs, services.

The IAM prefix policy is the isolation contract of seed 004: a location's task
role may read and write only `<prefix>/<env>/<repo prefix>/*` of the bucket, may
read `<prefix>/<env>/shared/*`, and may list only those two prefixes. Its runs'
step logs are inside its own prefix (`.../logs/`, render/compute_logs.py); the
instance role reads every location's `logs/` and nothing else of theirs.
"""

from __future__ import annotations

import re
from typing import Any

from dagfleet.render import common as c
from dagfleet.render import compute_logs
from dagfleet.spec.models import Fleet, LocationSpec
from dagfleet.storage.paths import repo_prefix

PARAMETERS: dict[str, Any] = {
    "VpcId": {"Type": "AWS::EC2::VPC::Id", "Description": "VPC of the fleet"},
    "SubnetIds": {
        "Type": "List<AWS::EC2::Subnet::Id>",
        "Description": "Private subnets for every service",
    },
    "PostgresHost": {"Type": "String", "Description": "Hostname of the instance database"},
    "PostgresUser": {"Type": "String", "Default": "dagster"},
    "PostgresDb": {"Type": "String", "Default": "dagster"},
    "PostgresPasswordSecretArn": {
        "Type": "String",
        "Description": "ARN of the Secrets Manager secret holding the database password",
    },
}


def logical_id(name: str) -> str:
    """CloudFormation logical IDs are alphanumeric: `medallion-A` -> `MedallionA`."""
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[^A-Za-z0-9]+", name))


SECRET_ARN = "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:"
EXECUTION_POLICY = (
    "arn:${AWS::Partition}:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
)


def secret_arn(fleet: Fleet, loc: LocationSpec, key: str) -> dict[str, str]:
    name = f"{fleet.name}/{loc.env}/{loc.repo}/{key}"
    return {"Fn::Sub": SECRET_ARN + name}


def postgres_environment() -> list[dict[str, Any]]:
    return [
        {"Name": "DAGSTER_POSTGRES_HOST", "Value": {"Ref": "PostgresHost"}},
        {"Name": "DAGSTER_POSTGRES_USER", "Value": {"Ref": "PostgresUser"}},
        {"Name": "DAGSTER_POSTGRES_DB", "Value": {"Ref": "PostgresDb"}},
    ]


def postgres_secrets() -> list[dict[str, Any]]:
    return [
        {"Name": "DAGSTER_POSTGRES_PASSWORD", "ValueFrom": {"Ref": "PostgresPasswordSecretArn"}}
    ]


def log_group(fleet: Fleet, name: str) -> dict[str, Any]:
    return {
        "Type": "AWS::Logs::LogGroup",
        "Properties": {"LogGroupName": f"/dagfleet/{fleet.name}/{name}", "RetentionInDays": 30},
    }


def log_configuration(group: str, prefix: str) -> dict[str, Any]:
    return {
        "LogDriver": "awslogs",
        "Options": {
            "awslogs-group": {"Ref": group},
            "awslogs-region": {"Ref": "AWS::Region"},
            "awslogs-stream-prefix": prefix,
        },
    }


def _assume_ecs_tasks() -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "ecs-tasks.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }


def s3_prefixes(fleet: Fleet, env: str, repo: str, bucket: str) -> tuple[str, str, str]:
    """(bucket, the location's own prefix, the environment's shared prefix), no slashes around."""
    bucket, base = c.bucket_and_prefix(c.s3_root(fleet, bucket))
    root = f"{base}/{env}" if base else env
    return bucket, f"{root}/{repo_prefix(fleet, repo)}", f"{root}/shared"


def step_logs_prefix(fleet: Fleet, bucket: str) -> tuple[str, str]:
    """(bucket, key prefix) of the instance's step logs (compute_logs.py): `<prefix>/storage`."""
    config = compute_logs.s3_config(fleet, bucket)
    return config["bucket"], compute_logs.log_keys_prefix(config).rstrip("/")


def prefix_policy(fleet: Fleet, env: str, repo: str, bucket: str) -> dict[str, Any]:
    logs_bucket, logs = step_logs_prefix(fleet, bucket)
    bucket, own, shared = s3_prefixes(fleet, env, repo, bucket)
    arn = f"arn:${{AWS::Partition}}:s3:::{bucket}"
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "OwnPrefix",
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
                "Resource": {"Fn::Sub": f"{arn}/{own}/*"},
            },
            {
                "Sid": "SharedReadOnly",
                "Effect": "Allow",
                "Action": ["s3:GetObject"],
                "Resource": {"Fn::Sub": f"{arn}/{shared}/*"},
            },
            {
                "Sid": "ListOwnAndShared",
                "Effect": "Allow",
                "Action": ["s3:ListBucket"],
                "Resource": {"Fn::Sub": arn},
                "Condition": {"StringLike": {"s3:prefix": [f"{own}/*", f"{shared}/*"]}},
            },
            {
                # A run's step logs go to `<own>/logs/` (OwnPrefix above); keys of no
                # run (sensor and schedule ticks) to the instance-wide prefix: put, and
                # head to see whether a capture is complete. No list there: a location
                # cannot enumerate the other locations' tick logs.
                "Sid": "StepLogsWrite",
                "Effect": "Allow",
                "Action": ["s3:PutObject", "s3:GetObject"],
                "Resource": {"Fn::Sub": f"arn:${{AWS::Partition}}:s3:::{logs_bucket}/{logs}/*"},
            },
        ],
    }


def task_role(fleet: Fleet, loc: LocationSpec, bucket: str) -> dict[str, Any]:
    return {
        "Type": "AWS::IAM::Role",
        "Properties": {
            "AssumeRolePolicyDocument": _assume_ecs_tasks(),
            "Policies": [
                {
                    "PolicyName": "storage-prefix",
                    "PolicyDocument": prefix_policy(fleet, loc.env, loc.repo, bucket),
                }
            ],
        },
    }


# IAM limits a role's inline policies to 10,240 characters in all: past this many
# locations the instance role names the default-prefix repos' logs/ with a wildcard.
STEP_LOGS_EXPLICIT_MAX = 30


def location_logs_prefixes(fleet: Fleet, bucket: str) -> list[str]:
    """Where the instance role reads step logs: every location's
    `<root>/<env>/<repo prefix>/logs` (compute_logs.py), once each, in a stable order.

    Past STEP_LOGS_EXPLICIT_MAX of them, the repos with the default prefix are named per
    environment as `<root>/<env>/repos/*/logs` (IAM's `*` also spans '/', so the role may
    then read a key of such a repo with a `/logs/` segment deeper down too; a repo with
    its own `s3_prefix` keeps its exact entry).
    """
    out: list[str] = []
    for loc in fleet.locations():
        if loc.playground:
            continue
        _, own, _ = s3_prefixes(fleet, loc.env, loc.repo, bucket)
        logs = compute_logs.location_logs_prefix(own)
        if logs not in out:
            out.append(logs)
    if len(out) <= STEP_LOGS_EXPLICIT_MAX:
        return out
    compact: list[str] = []
    for loc in fleet.locations():
        if loc.playground:
            continue
        _, own, _ = s3_prefixes(fleet, loc.env, loc.repo, bucket)
        if repo_prefix(fleet, loc.repo) == f"repos/{loc.repo}":
            env_root = own[: -len(f"/{loc.repo}")]  # <root>/<env>/repos
            logs = compute_logs.location_logs_prefix(f"{env_root}/*")
        else:
            logs = compute_logs.location_logs_prefix(own)
        if logs not in compact:
            compact.append(logs)
    return compact


def step_logs_read_policy(fleet: Fleet, bucket: str) -> dict[str, Any]:
    """The webserver reads (and on run deletion deletes) the step logs the runs uploaded:
    each location's `logs/` and the instance-wide prefix, nothing else of the bucket."""
    logs_bucket, fallback = step_logs_prefix(fleet, bucket)
    prefixes = [*location_logs_prefixes(fleet, bucket), fallback]
    arn = f"arn:${{AWS::Partition}}:s3:::{logs_bucket}"
    return {
        "PolicyName": "step-logs",
        "PolicyDocument": {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "StepLogsRead",
                    "Effect": "Allow",
                    "Action": ["s3:GetObject", "s3:DeleteObject"],
                    "Resource": [{"Fn::Sub": f"{arn}/{p}/*"} for p in prefixes],
                },
                {
                    "Sid": "StepLogsList",
                    "Effect": "Allow",
                    "Action": ["s3:ListBucket"],
                    "Resource": {"Fn::Sub": arn},
                    "Condition": {"StringLike": {"s3:prefix": [f"{p}/*" for p in prefixes]}},
                },
            ],
        },
    }


def instance_role(fleet: Fleet, bucket: str) -> dict[str, Any]:
    """The webserver and daemon launch run tasks (EcsRunLauncher) and pass their roles,
    and the webserver reads the step logs (step_logs_read_policy)."""
    return {
        "Type": "AWS::IAM::Role",
        "Properties": {
            "AssumeRolePolicyDocument": _assume_ecs_tasks(),
            "Policies": [
                {
                    "PolicyName": "ecs-run-launcher",
                    "PolicyDocument": {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Action": [
                                    "ecs:DescribeTaskDefinition",
                                    "ecs:DescribeTasks",
                                    "ecs:ListAccountSettings",
                                    "ecs:RegisterTaskDefinition",
                                    "ecs:RunTask",
                                    "ecs:StopTask",
                                    "ecs:TagResource",
                                    "ec2:DescribeNetworkInterfaces",
                                    "secretsmanager:DescribeSecret",
                                    "secretsmanager:ListSecrets",
                                ],
                                "Resource": "*",
                            },
                            {"Effect": "Allow", "Action": "iam:PassRole", "Resource": "*"},
                        ],
                    },
                },
                step_logs_read_policy(fleet, bucket),
            ],
        },
    }


def shared_resources(
    fleet: Fleet, *, instance_ingress: list[dict[str, Any]], more_secrets: list[Any]
) -> dict[str, Any]:
    """The cluster, the execution role (reading the fleet's secrets, the database
    password and `more_secrets`) and the security groups; the instance group admits
    `instance_ingress` only (the front door's port, from its load balancer)."""
    secrets = {"Fn::Sub": SECRET_ARN + f"{fleet.name}/*"}
    return {
        "Cluster": {"Type": "AWS::ECS::Cluster", "Properties": {"ClusterName": fleet.name}},
        "ExecutionRole": {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "AssumeRolePolicyDocument": _assume_ecs_tasks(),
                "ManagedPolicyArns": [{"Fn::Sub": EXECUTION_POLICY}],
                "Policies": [
                    {
                        "PolicyName": "read-fleet-secrets",
                        "PolicyDocument": {
                            "Version": "2012-10-17",
                            "Statement": [
                                {
                                    "Effect": "Allow",
                                    "Action": "secretsmanager:GetSecretValue",
                                    "Resource": [
                                        secrets,
                                        {"Ref": "PostgresPasswordSecretArn"},
                                        *more_secrets,
                                    ],
                                }
                            ],
                        },
                    }
                ],
            },
        },
        "InstanceSecurityGroup": _security_group(
            "dagster webserver and daemon: only the front door port, from its load balancer",
            instance_ingress,
        ),
        "CodeServerSecurityGroup": _security_group(
            "dagfleet code servers: gRPC from the instance only",
            [
                {
                    "IpProtocol": "tcp",
                    "FromPort": c.CODE_PORT,
                    "ToPort": c.CODE_PORT,
                    "SourceSecurityGroupId": {"Ref": "InstanceSecurityGroup"},
                }
            ],
        ),
    }


def _security_group(description: str, ingress: list[dict[str, Any]]) -> dict[str, Any]:
    props: dict[str, Any] = {"GroupDescription": description, "VpcId": {"Ref": "VpcId"}}
    if ingress:
        props["SecurityGroupIngress"] = ingress
    return {"Type": "AWS::EC2::SecurityGroup", "Properties": props}


def dns_namespace_resource(name: str) -> dict[str, Any]:
    return {
        "Type": "AWS::ServiceDiscovery::PrivateDnsNamespace",
        "Properties": {"Name": name, "Vpc": {"Ref": "VpcId"}},
    }


def discovery_service(name: str, env: str) -> dict[str, Any]:
    return {
        "Type": "AWS::ServiceDiscovery::Service",
        "Properties": {
            "Name": name,
            "NamespaceId": {"Ref": f"Namespace{logical_id(env)}"},
            "DnsConfig": {"DnsRecords": [{"Type": "A", "TTL": 10}], "RoutingPolicy": "MULTIVALUE"},
            "HealthCheckCustomConfig": {"FailureThreshold": 1},
        },
    }


def task_definition(
    family: str,
    containers: list[dict[str, Any]],
    *,
    cpu: int,
    memory: int,
    task_role: str,
    commit: str | None = None,
) -> dict[str, Any]:
    """A Fargate task definition. CloudFormation registers a new revision of `family`
    whenever its containers change, so a location's new commit (its image tag and
    DAGFLEET_COMMIT) is a new revision, tagged `dagfleet:commit`."""
    props: dict[str, Any] = {
        "Family": family,
        "RequiresCompatibilities": ["FARGATE"],
        "NetworkMode": "awsvpc",
        "Cpu": str(cpu),
        "Memory": str(memory),
        "ExecutionRoleArn": {"Fn::GetAtt": ["ExecutionRole", "Arn"]},
        "TaskRoleArn": {"Fn::GetAtt": [task_role, "Arn"]},
        "ContainerDefinitions": containers,
    }
    if commit:
        props["Tags"] = [{"Key": "dagfleet:commit", "Value": commit}]
    return {"Type": "AWS::ECS::TaskDefinition", "Properties": props}


def service(
    task: str,
    security_group: str,
    discovery: str | None = None,
    load_balancers: list[dict[str, Any]] | None = None,
    depends_on: str | None = None,
    rollback: bool = False,
) -> dict[str, Any]:
    """An ECS service. With `rollback` (code servers): a rolling deployment that starts
    the new task before stopping the old one (100% minimum healthy) and the deployment
    circuit breaker with rollback, so a task definition whose container never turns
    healthy (definitions that do not load) rolls back to the last one that did."""
    props: dict[str, Any] = {
        "Cluster": {"Ref": "Cluster"},
        "LaunchType": "FARGATE",
        "DesiredCount": 1,
        "TaskDefinition": {"Ref": task},
        "NetworkConfiguration": {
            "AwsvpcConfiguration": {
                "AssignPublicIp": "DISABLED",
                "Subnets": {"Ref": "SubnetIds"},
                "SecurityGroups": [{"Ref": security_group}],
            }
        },
    }
    if rollback:
        props["DeploymentConfiguration"] = {
            "DeploymentCircuitBreaker": {"Enable": True, "Rollback": True},
            "MinimumHealthyPercent": 100,
            "MaximumPercent": 200,
        }
    if discovery:
        props["ServiceRegistries"] = [{"RegistryArn": {"Fn::GetAtt": [discovery, "Arn"]}}]
    if load_balancers:
        props["LoadBalancers"] = load_balancers
        props["HealthCheckGracePeriodSeconds"] = 60
    out: dict[str, Any] = {"Type": "AWS::ECS::Service", "Properties": props}
    if depends_on:
        # A service behind a target group waits for the listener attaching it.
        out["DependsOn"] = depends_on
    return out
