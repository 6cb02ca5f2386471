"""One code location on Kubernetes: its Deployment (code server + git-sync) and Service.

The pod follows seed 000: a git-sync v4 sidecar keeps `<root>/current` on the
location's ref and calls the code server's reload hook after each publish; the
code server (`dagster code-server start` via the launcher) listens on 4000,
answers `dagster api grpc-health-check`, and in debug environments listens for
debugpy on 5678. git-sync runs as a native sidecar (an init container with
`restartPolicy: Always`, Kubernetes >= 1.29) with a startup probe, so the code
server starts only after the first checkout exists.
"""

from __future__ import annotations

import json
from typing import Any

from dagfleet.render import common as c
from dagfleet.render import postgres
from dagfleet.render.options import K8sOptions
from dagfleet.spec.models import Fleet, LocationSpec

GIT_SYNC_HTTP_PORT = 2020
CODE_SERVER_SA = "dagster-code"


def env_entries(fleet: Fleet, loc: LocationSpec, storage: dict[str, str]) -> list[dict[str, Any]]:
    """Literal values as `value`, secret references as `secretKeyRef`, never a secret value."""
    out: list[dict[str, Any]] = [
        {"name": k, "value": v} for k, v in {**c.literal_env(fleet, loc), **storage}.items()
    ]
    for var in c.secret_vars(fleet, loc):
        ref = {"name": c.secret_name(loc.repo), "key": c.secret_key(var)}
        out.append({"name": var.name, "valueFrom": {"secretKeyRef": ref}})
    return out


def _snake(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # dagster-k8s container contexts take the Kubernetes models' snake_case field names.
    out = []
    for e in entries:
        if "valueFrom" in e:
            ref = e["valueFrom"]["secretKeyRef"]
            out.append({"name": e["name"], "value_from": {"secret_key_ref": ref}})
        else:
            out.append(e)
    return out


def git_sync_container(
    fleet: Fleet, loc: LocationSpec, opts: K8sOptions, *, one_time: bool = False
) -> dict[str, Any]:
    repo = fleet.repos[loc.repo]
    args = [
        f"--repo={repo.git_url}",
        f"--ref={loc.pin or loc.ref}",
        f"--root={c.CHECKOUT_DIR}",
        f"--link={c.CHECKOUT_LINK}",
        "--depth=1",
    ]
    if one_time:
        args.append("--one-time")
    else:
        args += [
            f"--period={int(loc.poll_interval)}s",
            f"--http-bind=:{GIT_SYNC_HTTP_PORT}",
            f"--webhook-url=http://127.0.0.1:{c.RELOAD_PORT}/reload",
            "--webhook-method=POST",
            "--webhook-success-status=200",
        ]
    container: dict[str, Any] = {
        "name": "git-sync",
        "image": opts.git_sync_image,
        "args": args,
        "volumeMounts": [{"name": "checkout", "mountPath": c.CHECKOUT_DIR}],
        "securityContext": {"runAsNonRoot": True, "runAsUser": 65533},
        "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}},
    }
    if not one_time:
        container["restartPolicy"] = "Always"
        container["startupProbe"] = {
            "httpGet": {"path": "/", "port": GIT_SYNC_HTTP_PORT},
            "periodSeconds": 2,
            "failureThreshold": 150,
        }
    return container


def _volumes(fleet: Fleet, loc: LocationSpec) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    volumes: list[dict[str, Any]] = [
        {"name": "checkout", "emptyDir": {}},
        {"name": "playground", "emptyDir": {}},
        {"name": "launcher", "configMap": {"name": "dagfleet-launcher", "defaultMode": 0o444}},
    ]
    mounts: list[dict[str, Any]] = [
        {"name": "checkout", "mountPath": c.CHECKOUT_DIR},
        {"name": "playground", "mountPath": c.PLAYGROUND_DIR},
        {"name": "launcher", "mountPath": c.LAUNCHER_DIR, "readOnly": True},
    ]
    if not fleet.spec.storage.is_s3:
        for layer in c.LAYERS:
            volumes.append({"name": layer, "persistentVolumeClaim": {"claimName": layer}})
            mounts.append({"name": layer, "mountPath": f"/data/{layer}"})
    return volumes, mounts


def storage_env(fleet: Fleet, loc: LocationSpec) -> dict[str, str]:
    if fleet.spec.storage.is_s3:
        return c.s3_env(fleet, loc.env, loc.repo, "")
    return c.local_env(c.repo_prefix(fleet, loc.repo))


def container_context(
    fleet: Fleet, loc: LocationSpec, opts: K8sOptions, env: list[dict[str, Any]]
) -> dict[str, Any]:
    """Where and how K8sRunLauncher runs this location's runs: its environment's namespace,
    the same variables, and a one-time git-sync of the same ref so the run sees the code."""
    volumes, mounts = _volumes(fleet, loc)
    keep = {"checkout", *c.LAYERS}
    k8s: dict[str, Any] = {
        "namespace": c.namespace(fleet, loc.env),
        "service_account_name": CODE_SERVER_SA,
        "volumes": [v for v in volumes if v["name"] in keep],
        "volume_mounts": [
            {"name": m["name"], "mount_path": m["mountPath"]} for m in mounts if m["name"] in keep
        ],
        "run_k8s_config": {"container_config": {"env": _snake(env)}},
    }
    if not loc.playground:
        sync = git_sync_container(fleet, loc, opts, one_time=True)
        sync["volume_mounts"] = [{"name": "checkout", "mount_path": c.CHECKOUT_DIR}]
        del sync["volumeMounts"]
        sync["security_context"] = sync.pop("securityContext")
        k8s["run_k8s_config"]["pod_spec_config"] = {"init_containers": [sync]}
    return {"k8s": k8s}


def code_server_container(fleet: Fleet, loc: LocationSpec, opts: K8sOptions) -> dict[str, Any]:
    code_dir = f"{c.CHECKOUT_DIR}/{c.CHECKOUT_LINK}"
    env = env_entries(fleet, loc, storage_env(fleet, loc)) + postgres.env_database_vars(
        fleet, loc.env
    )
    image = playground_image(opts) if loc.playground else opts.repo_image(loc.repo)
    control = {
        "DAGFLEET_CODE_DIR": c.working_dir(fleet, loc, code_dir),
        "DAGFLEET_PORT": str(c.CODE_PORT),
        "DAGFLEET_RELOAD_PORT": str(c.RELOAD_PORT),
        "DAGFLEET_WEBSERVER_URL": webserver_url(fleet, opts),
        "DAGSTER_CONTAINER_IMAGE": image,
        "DAGSTER_CONTAINER_CONTEXT": json.dumps(
            container_context(fleet, loc, opts, env), sort_keys=True
        ),
    }
    args = c.target_args(fleet, loc, code_dir)
    if args is not None:
        control["DAGFLEET_TARGET_ARGS"] = json.dumps(args)
    if loc.playground:
        control["DAGFLEET_PLAYGROUND"] = "1"
    ports = [{"name": "grpc", "containerPort": c.CODE_PORT}]
    # debugpy is installed in the repo images (render dockerfile), not in the playground's.
    if fleet.environment(loc.env).debug and not loc.playground:
        control["DAGFLEET_DEBUG_PORT"] = str(c.DEBUG_PORT)
        ports.append({"name": "debugpy", "containerPort": c.DEBUG_PORT})
    repo = c.repo_of(fleet, loc)
    cpu, mem = (repo.resources.cpu, repo.resources.memory) if repo else (256, 512)
    _, mounts = _volumes(fleet, loc)
    return {
        "name": "code-server",
        "image": image,
        "imagePullPolicy": "Always",
        "command": ["python", c.LAUNCHER_PATH],
        "env": env + [{"name": k, "value": v} for k, v in control.items()],
        "ports": ports,
        "readinessProbe": {
            "exec": {"command": ["dagster", "api", "grpc-health-check", "-p", str(c.CODE_PORT)]},
            "periodSeconds": 10,
            "timeoutSeconds": 5,
        },
        "resources": {
            "requests": {"cpu": c.cpu_quantity(cpu), "memory": c.memory_quantity(mem)},
            "limits": {"memory": c.memory_quantity(mem)},
        },
        "volumeMounts": mounts,
        "securityContext": {"runAsNonRoot": True, "allowPrivilegeEscalation": False},
    }


def playground_image(opts: K8sOptions) -> str:
    """Playgrounds have no repo image: the official Dagster image runs their code server."""
    return f"docker.io/dagster/dagster-k8s:{opts.dagster_version}"


def webserver_url(fleet: Fleet, opts: K8sOptions) -> str:
    ns = c.instance_namespace(fleet)
    return f"http://{opts.release_name}-dagster-webserver.{ns}.svc.cluster.local:80"


def deployment(fleet: Fleet, loc: LocationSpec, opts: K8sOptions) -> dict[str, Any]:
    name = c.location_k8s_name(loc)
    selector = {"dagfleet.dev/location": name}
    labels = {**c.labels(fleet, "code-server", env=loc.env, repo=loc.repo), **selector}
    volumes, _ = _volumes(fleet, loc)
    spec: dict[str, Any] = {
        "serviceAccountName": CODE_SERVER_SA,
        "securityContext": {"fsGroup": 65533},
        "containers": [code_server_container(fleet, loc, opts)],
        "volumes": volumes,
    }
    if not loc.playground:
        spec["initContainers"] = [git_sync_container(fleet, loc, opts)]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": c.namespace(fleet, loc.env), "labels": labels},
        "spec": {
            "replicas": 1,
            # Playground files live in the pod: never run two copies of a location.
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": selector},
            "template": {"metadata": {"labels": labels}, "spec": spec},
        },
    }


def service(fleet: Fleet, loc: LocationSpec) -> dict[str, Any]:
    name = c.location_k8s_name(loc)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": name,
            "namespace": c.namespace(fleet, loc.env),
            "labels": c.labels(fleet, "code-server", env=loc.env, repo=loc.repo),
        },
        "spec": {
            "selector": {"dagfleet.dev/location": name},
            "ports": [{"name": "grpc", "port": c.CODE_PORT, "targetPort": "grpc"}],
        },
    }


def service_host(fleet: Fleet, loc: LocationSpec) -> str:
    return f"{c.location_k8s_name(loc)}.{c.namespace(fleet, loc.env)}.svc.cluster.local"
