"""`render ecs`: one CloudFormation template for the fleet on ECS Fargate (seed 004).

Per location: a task definition and service (cpu/memory from the repo spec, in
ECS units as in seed 004), a Cloud Map service `<location>` in the private DNS
namespace `<fleet>-<env>.local` (so the generated workspace.yaml lists
`<location>.<fleet>-<env>.local:4000`), a task role allowed only
`s3://<bucket>/<env>/repos/<repo>/*` plus read on `<env>/shared/`, a CloudWatch
log group, literal variables as `Environment` and secret references as
`Secrets` pointing at Secrets Manager secrets named `<fleet>/<env>/<repo>/<key>`.
The instance: a webserver and a daemon service with the EcsRunLauncher and
Postgres storage; their dagster.yaml and workspace.yaml are passed as
variables and written at start. The webserver listens on 127.0.0.1 only: its
task also runs dagfleet's front door, the one public entry, behind a load
balancer (ecs_frontdoor.py). The VPC, subnets, the database, the front door's
certificate, public URL and secret ARNs are parameters. Options (EcsOptions):
`s3_bucket` (default "dagster-storage", used when the fleet's storage root is
not s3://), image registry and tag, `frontdoor_image`.
Code locations use their repo image; the instance uses the first repo's image
(every image from `render dockerfile` carries dagster-webserver,
dagster-postgres, dagster-aws and dagfleet-runtime, whose step-log manager the
instance names: compute_logs.py), seed 003's one image for all services.
"""

from __future__ import annotations

import json
from typing import Any

import yaml

from dagfleet.render import common as c
from dagfleet.render import compute_logs
from dagfleet.render import ecs_frontdoor as door
from dagfleet.render import ecs_parts as p
from dagfleet.render.options import EcsOptions
from dagfleet.spec.models import Fleet, LocationSpec

# launch.py's readiness check: exit 0 only once the code server lists its repositories.
PROBE_FLAG = "--probe"


def dns_namespace(fleet: Fleet, env: str) -> str:
    return f"{c.namespace(fleet, env)}.local"


def host(fleet: Fleet, loc: LocationSpec) -> str:
    return f"{c.location_k8s_name(loc)}.{dns_namespace(fleet, loc.env)}"


def workspace_document(fleet: Fleet) -> dict[str, Any]:
    return {
        "load_from": [
            {
                "grpc_server": {
                    "host": host(fleet, loc),
                    "port": c.CODE_PORT,
                    "location_name": loc.name,
                }
            }
            for loc in fleet.locations()
            if not loc.playground
        ]
    }


def instance_yaml(fleet: Fleet, opts: EcsOptions) -> dict[str, Any]:
    """The instance's dagster.yaml: EcsRunLauncher, Postgres, and step logs in S3
    (compute_logs.py) unless fleet.yaml's `instance.dagster` sets its own."""

    def env(name: str) -> dict[str, str]:
        return {"env": name}

    return {
        "compute_logs": compute_logs.dagster_yaml_section(fleet, opts.s3_bucket),
        "run_launcher": {
            "module": "dagster_aws.ecs",
            "class": "EcsRunLauncher",
            "config": {"include_sidecars": False},
        },
        "storage": {
            "postgres": {
                "postgres_db": {
                    "username": env("DAGSTER_POSTGRES_USER"),
                    "password": env("DAGSTER_POSTGRES_PASSWORD"),
                    "hostname": env("DAGSTER_POSTGRES_HOST"),
                    "db_name": env("DAGSTER_POSTGRES_DB"),
                    "port": 5432,
                }
            }
        },
    }


def _commit(opts: EcsOptions, loc: LocationSpec) -> str | None:
    """The location's commit from `opts.commits` (a full 40-hex SHA), None when unlisted."""
    commit = opts.commits.get(loc.name)
    return None if commit is None else c.check_commit(loc.name, commit)


def location_image(opts: EcsOptions, loc: LocationSpec) -> str:
    """`<registry>/<repo>:<commit>` for a location pinned in `opts.commits` (the tag `render
    ci` pushes for a commit), else `<registry>/<repo>:<image_tag>`."""
    commit = _commit(opts, loc)
    if commit is None:
        return opts.repo_image(loc.repo)
    return f"{opts.registry.rstrip('/')}/{loc.repo}:{commit}"


def _location_resources(fleet: Fleet, loc: LocationSpec, opts: EcsOptions) -> dict[str, Any]:
    repo = fleet.repos[loc.repo]
    lid = p.logical_id(loc.name)
    storage = c.s3_env(fleet, loc.env, loc.repo, opts.s3_bucket)
    env_vars = {**c.literal_env(fleet, loc, checkout=c.APP_DIR, storage=storage), **storage}
    secrets = [
        {"Name": var.name, "ValueFrom": p.secret_arn(fleet, loc, c.secret_key(var))}
        for var in c.secret_vars(fleet, loc)
    ]
    commit = _commit(opts, loc)
    image = location_image(opts, loc)
    args = c.target_args(fleet, loc, c.APP_DIR)
    control = {
        "DAGFLEET_CODE_DIR": c.working_dir(fleet, loc, c.APP_DIR),
        "DAGFLEET_PORT": str(c.CODE_PORT),
        "DAGSTER_CONTAINER_IMAGE": image,
    }
    if args is not None:
        control["DAGFLEET_TARGET_ARGS"] = json.dumps(args)
    if commit:
        # The image holds this commit's code; runs start from the same image.
        control["DAGFLEET_COMMIT"] = commit
    context: dict[str, Any] = {
        "ecs": {
            "task_role_arn": f"${{TaskRole{lid}.Arn}}",
            "execution_role_arn": "${ExecutionRole.Arn}",
            "run_resources": {"cpu": str(repo.resources.cpu), "memory": str(repo.resources.memory)},
        }
    }
    if commit:
        # The EcsRunLauncher gives a run task the container context's variables (not the
        # code server's environment): the run knows the commit its image holds.
        context["ecs"]["env_vars"] = [f"DAGFLEET_COMMIT={commit}"]
    environment: list[dict[str, Any]] = [
        {"Name": k, "Value": v} for k, v in {**env_vars, **control}.items()
    ]
    environment.append(
        {"Name": "DAGSTER_CONTAINER_CONTEXT", "Value": {"Fn::Sub": json.dumps(context)}}
    )
    environment += p.postgres_environment()
    container = {
        "Name": "code-server",
        "Image": image,
        "Essential": True,
        "Command": ["python", c.LAUNCHER_PATH],
        "PortMappings": [{"ContainerPort": c.CODE_PORT, "Protocol": "tcp"}],
        "Environment": environment,
        "Secrets": secrets + p.postgres_secrets(),
        "HealthCheck": {
            # Healthy only once the definitions loaded (`launch.py --probe` asks for the
            # repositories; grpc-health-check also passes for a server holding a load error).
            "Command": ["CMD", "python", c.LAUNCHER_PATH, PROBE_FLAG],
            "Interval": 30,
            "Timeout": 10,
            "Retries": 3,
            "StartPeriod": 60,
        },
        "LogConfiguration": p.log_configuration(f"LogGroup{lid}", loc.name),
    }
    return {
        f"LogGroup{lid}": p.log_group(fleet, loc.name),
        f"TaskRole{lid}": p.task_role(fleet, loc, opts.s3_bucket),
        f"Discovery{lid}": p.discovery_service(c.location_k8s_name(loc), loc.env),
        f"TaskDefinition{lid}": p.task_definition(
            f"{fleet.name}-{loc.name}".lower(),
            [container],
            cpu=repo.resources.cpu,
            memory=repo.resources.memory,
            task_role=f"TaskRole{lid}",
            commit=commit,
        ),
        f"Service{lid}": p.service(
            f"TaskDefinition{lid}",
            "CodeServerSecurityGroup",
            discovery=f"Discovery{lid}",
            rollback=True,
        ),
    }


def _instance_resources(fleet: Fleet, opts: EcsOptions) -> dict[str, Any]:
    first = sorted(fleet.repos)[0] if fleet.repos else "dagster"
    image = opts.repo_image(first)
    files = {
        "DAGSTER_YAML": yaml.safe_dump(
            {**instance_yaml(fleet, opts), **fleet.spec.instance.dagster}, sort_keys=False
        ),
        "WORKSPACE_YAML": yaml.safe_dump(workspace_document(fleet), sort_keys=False),
    }
    write = (
        'mkdir -p "$DAGSTER_HOME" && printf "%s" "$DAGSTER_YAML" > "$DAGSTER_HOME/dagster.yaml"'
        ' && printf "%s" "$WORKSPACE_YAML" > "$DAGSTER_HOME/workspace.yaml" && exec '
    )
    out: dict[str, Any] = {
        "LogGroupInstance": p.log_group(fleet, "instance"),
        "TaskRoleInstance": p.instance_role(fleet, opts.s3_bucket),
    }
    workspace = '"$DAGSTER_HOME/workspace.yaml"'
    commands = {
        # Loopback only: the front door beside it in the task is the way in.
        "Webserver": f"dagster-webserver -h 127.0.0.1 -p {c.WEBSERVER_PORT} -w {workspace}",
        "Daemon": f"dagster-daemon run -w {workspace}",
    }
    for name, command in commands.items():
        container = {
            "Name": name.lower(),
            "Image": image,
            "Essential": True,
            "EntryPoint": ["sh", "-c"],
            "Command": [write + command],
            "Environment": [{"Name": k, "Value": v} for k, v in files.items()]
            + [{"Name": "DAGSTER_HOME", "Value": c.DAGSTER_HOME}]
            + p.postgres_environment(),
            "Secrets": p.postgres_secrets(),
            "LogConfiguration": p.log_configuration("LogGroupInstance", name.lower()),
        }
        containers = [container]
        if name == "Webserver":
            containers.append(door.container(fleet, opts, door.webserver_upstream()))
        out[f"TaskDefinition{name}"] = p.task_definition(
            f"{fleet.name}-{name.lower()}",
            containers,
            cpu=1024,
            memory=2048,
            task_role="TaskRoleInstance",
        )
        if name == "Webserver":
            out[f"Service{name}"] = p.service(
                f"TaskDefinition{name}",
                "InstanceSecurityGroup",
                load_balancers=door.service_load_balancers(),
                depends_on=door.LISTENER,
            )
        else:
            out[f"Service{name}"] = p.service(f"TaskDefinition{name}", "InstanceSecurityGroup")
    out.update(door.load_balancer_resources(fleet))
    return out


def render_ecs(fleet: Fleet, opts: EcsOptions | None = None) -> c.Rendered:
    c.require_remote_git_urls(fleet, "ECS")  # tasks clone from there: a local path is nowhere
    opts = opts or EcsOptions()
    resources: dict[str, Any] = p.shared_resources(
        fleet, instance_ingress=door.instance_ingress(), more_secrets=door.secret_arns(fleet)
    )
    for env in fleet.spec.environments:
        resources[f"Namespace{p.logical_id(env.name)}"] = p.dns_namespace_resource(
            dns_namespace(fleet, env.name)
        )
    for loc in fleet.locations():
        if not loc.playground:
            resources.update(_location_resources(fleet, loc, opts))
    resources.update(_instance_resources(fleet, opts))
    template = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": f"dagfleet fleet {fleet.name} on ECS (rendered by dagfleet)",
        "Parameters": {**p.PARAMETERS, **door.parameters(fleet)},
        "Conditions": door.conditions(),
        "Resources": resources,
        "Outputs": {"Cluster": {"Value": {"Ref": "Cluster"}}, **door.outputs()},
    }
    return {"template.yaml": template, "workspace.yaml": workspace_document(fleet)}
