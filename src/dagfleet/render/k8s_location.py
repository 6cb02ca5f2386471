"""One code location on Kubernetes: its Deployment (code server + git-sync) and Service.

The pod follows seed 000: a git-sync v4 sidecar keeps `<root>/current` on the
location's ref and calls the code server's reload hook after each publish; the
code server (`dagster code-server start` via the launcher) listens on 4000,
answers `dagster api grpc-health-check`, and in debug environments listens for
debugpy on 5678. git-sync runs as a native sidecar (an init container with
`restartPolicy: Always`, Kubernetes >= 1.29) with a startup probe, so the code
server starts only after the first checkout exists.

Runs of the location are Jobs the instance's K8sRunLauncher creates from the
code server's container context (`container_context`): in the location's
environment namespace, with the same variables, storage mounts and resources.
"""

from __future__ import annotations

import json
import re
from typing import Any

from dagfleet.render import common as c
from dagfleet.render import postgres
from dagfleet.render.options import K8sOptions
from dagfleet.spec.models import Fleet, LocationSpec
from dagfleet.storage.paths import storage_paths

GIT_SYNC_HTTP_PORT = 2020
CODE_SERVER_SA = "dagster-code"
# git-sync's group: the checkout and the data claims are group-writable for it.
FS_GROUP = 65533
CONTAINER_SECURITY = {"runAsNonRoot": True, "allowPrivilegeEscalation": False}
# A repo's git credentials (repo file `credentials:`): a Secret mounted into git-sync only.
GIT_SECRET_VOLUME = "git-credentials"
GIT_SECRET_DIR = "/etc/git-secret"


def env_entries(fleet: Fleet, loc: LocationSpec, storage: dict[str, str]) -> list[dict[str, Any]]:
    """Literal values as `value`, secret references as `secretKeyRef`, never a secret value."""
    out: list[dict[str, Any]] = [
        {"name": k, "value": v}
        for k, v in {
            **c.literal_env(fleet, loc, checkout=c.K8S_CODE_DIR, storage=storage),
            **storage,
        }.items()
    ]
    for var in c.secret_vars(fleet, loc):
        ref = {"name": c.secret_name(loc.repo), "key": c.secret_key(var)}
        out.append({"name": var.name, "valueFrom": {"secretKeyRef": ref}})
    return out


_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_MAP_FIELDS = frozenset({"labels", "annotations", "requests", "limits", "matchLabels"})


def snake_case(value: Any) -> Any:
    """A Kubernetes object written with the Python client's snake_case field names.

    dagster-k8s reads the Kubernetes parts of a container context (volumes, env,
    init containers...) through the kubernetes client's models, whose
    `attribute_map` accepts either spelling; the container context's own keys and
    the typeahead schema are snake_case, so the whole context is written that way.
    The keys of maps (labels, resource quantities) are data and stay as they are.
    """
    if isinstance(value, list):
        return [snake_case(v) for v in value]
    if not isinstance(value, dict):
        return value
    return {
        _CAMEL.sub("_", k).lower(): (v if k in _MAP_FIELDS else snake_case(v))
        for k, v in value.items()
    }


def git_credentials_secret(repo: str) -> str:
    """The Secret (in each environment's namespace) holding a repo's git credentials."""
    return c.k8s_name(repo, "git-credentials")


def git_credentials_args(fleet: Fleet, loc: LocationSpec) -> list[str]:
    """git-sync v4's flags for the repo's credentials, read from the mounted Secret:
    `--username` and `--password-file` for a token, `--ssh-key-file` and
    `--ssh-known-hosts-file` (host keys always checked) for a deploy key."""
    creds = fleet.repos[loc.repo].credentials
    if creds is None:
        return []
    if creds.kind == "https":
        return [f"--username={creds.user}", f"--password-file={GIT_SECRET_DIR}/token"]
    return [
        f"--ssh-key-file={GIT_SECRET_DIR}/ssh",
        "--ssh-known-hosts=true",
        f"--ssh-known-hosts-file={GIT_SECRET_DIR}/known_hosts",
    ]


def git_credentials_volume(fleet: Fleet, loc: LocationSpec) -> list[dict[str, Any]]:
    """The Secret as a volume, for git-sync only: the code server never mounts it."""
    repo = fleet.repos.get(loc.repo)
    if loc.playground or repo is None or repo.credentials is None:
        return []
    # 0400 plus the pod's fsGroup, as git-sync documents: ssh refuses group-readable keys.
    secret = {"secretName": git_credentials_secret(loc.repo), "defaultMode": 0o400}
    return [{"name": GIT_SECRET_VOLUME, "secret": secret}]


def git_credentials_commands(fleet: Fleet) -> list[str]:
    """The kubectl commands that create each repo's git credentials Secret (values are
    the user's: dagfleet renders no secret)."""
    out: list[str] = []
    for repo in sorted(fleet.repos.values(), key=lambda r: r.name):
        if repo.credentials is None:
            continue
        if repo.credentials.kind == "https":
            data = '--from-literal=token="$TOKEN"'
        else:
            data = "--from-file=ssh=./deploy-key --from-file=known_hosts=./known_hosts"
        for env in fleet.spec.environments:
            if repo.runs_in(env.name):
                out.append(
                    f"kubectl -n {c.namespace(fleet, env.name)} create secret generic "
                    f"{git_credentials_secret(repo.name)} {data}"
                )
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
        *git_credentials_args(fleet, loc),
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
    if repo.credentials is not None:
        container["volumeMounts"].append(
            {"name": GIT_SECRET_VOLUME, "mountPath": GIT_SECRET_DIR, "readOnly": True}
        )
    if not one_time:
        container["restartPolicy"] = "Always"
        container["startupProbe"] = {
            "httpGet": {"path": "/", "port": GIT_SYNC_HTTP_PORT},
            "periodSeconds": 2,
            "failureThreshold": 150,
        }
    return container


def storage_volumes(
    fleet: Fleet, loc: LocationSpec
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The location's storage as volumes and mounts; the code server and its run pods get both.

    A local root is one `data` claim per environment, mounted with `subPath`: the
    repo's prefix read-write at DAGFLEET_STORAGE_ROOT and `shared` read-only, so
    no location sees another's files. Seed 001's `bronze`/`silver`/`gold` claims
    are mounted the same way, at `<location root>/<layer>` where the medallion's IO
    manager writes each layer. DAGFLEET_TEMP is an emptyDir: scratch space of one
    pod, never shared between repos (with an s3:// root too).
    """
    volumes: list[dict[str, Any]] = [{"name": "temp", "emptyDir": {}}]
    mounts: list[dict[str, Any]] = [{"name": "temp", "mountPath": c.TEMP_DIR}]
    if fleet.spec.storage.is_s3:
        return volumes, mounts
    p = storage_paths(fleet, loc.repo, loc.env, root=c.DATA_ROOT)
    for claim in (c.DATA_CLAIM, *c.LAYERS):
        volumes.append({"name": claim, "persistentVolumeClaim": {"claimName": claim}})
    mounts += [
        {"name": c.DATA_CLAIM, "mountPath": p.location, "subPath": p.prefix},
        {"name": c.DATA_CLAIM, "mountPath": p.shared, "subPath": "shared", "readOnly": True},
    ]
    mounts += [
        {"name": layer, "mountPath": f"{p.location}/{layer}", "subPath": p.prefix}
        for layer in c.LAYERS
    ]
    return volumes, mounts


def _volumes(fleet: Fleet, loc: LocationSpec) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    playground: dict[str, Any] = (
        {"persistentVolumeClaim": {"claimName": c.PLAYGROUND_CLAIM}}
        if loc.playground
        else {"emptyDir": {}}
    )
    volumes: list[dict[str, Any]] = [
        {"name": "checkout", "emptyDir": {}},
        {"name": "playground", **playground},
        {"name": "launcher", "configMap": {"name": "dagfleet-launcher", "defaultMode": 0o444}},
    ]
    mounts: list[dict[str, Any]] = [
        {"name": "checkout", "mountPath": c.CHECKOUT_DIR},
        {"name": "playground", "mountPath": c.PLAYGROUND_DIR},
        {"name": "launcher", "mountPath": c.LAUNCHER_DIR, "readOnly": True},
    ]
    storage, storage_mounts = storage_volumes(fleet, loc)
    return volumes + storage + git_credentials_volume(fleet, loc), mounts + storage_mounts


def storage_env(fleet: Fleet, loc: LocationSpec) -> dict[str, str]:
    """The storage variables `dagfleet up` sets (dagfleet.storage.location_env), as paths
    inside the pod: the location's own prefix, its assets/runs/logs, shared and temp."""
    env = c.container_storage_env(fleet, loc.env, loc.repo)
    env["DAGFLEET_TEMP"] = c.TEMP_DIR
    return env


def resources(fleet: Fleet, loc: LocationSpec) -> dict[str, Any]:
    """cpu and memory from the repo spec (ECS units), for the code server and its runs."""
    repo = c.repo_of(fleet, loc)
    cpu, mem = (repo.resources.cpu, repo.resources.memory) if repo else (256, 512)
    return {
        "requests": {"cpu": c.cpu_quantity(cpu), "memory": c.memory_quantity(mem)},
        "limits": {"memory": c.memory_quantity(mem)},
    }


def run_labels(fleet: Fleet, loc: LocationSpec) -> dict[str, str]:
    """Labels of a location's run Jobs and pods (the launcher adds its own app.kubernetes.io)."""
    return {
        "dagfleet.dev/fleet": fleet.name,
        "dagfleet.dev/env": c.k8s_name(loc.env),
        "dagfleet.dev/repo": c.k8s_name(loc.repo),
        "dagfleet.dev/location": c.location_k8s_name(loc),
    }


def container_context(
    fleet: Fleet, loc: LocationSpec, opts: K8sOptions, env: list[dict[str, Any]]
) -> dict[str, Any]:
    """Where and how K8sRunLauncher runs this location's runs (DAGSTER_CONTAINER_CONTEXT).

    The official chart's user deployments do the same: `dagster code-server start`
    reads the variable and attaches it to every run of the location, and
    dagster-k8s (K8sContainerContext.create_from_config) merges it over the run
    launcher's settings. Keys are those of dagster-k8s's container context schema
    (`DagsterK8sJobConfig.config_type_container_context`): its `namespace` is the
    environment's namespace, so the runs of `<repo>-<env>` run in `<fleet>-<env>`
    with the code server's service account, variables, storage mounts, resources
    and security settings, plus a one-time git-sync of the same ref so the run
    sees the code; a playground's runs mount its playground claim instead.
    """
    volumes, mounts = _volumes(fleet, loc)
    keep = {"temp", c.DATA_CLAIM, *c.LAYERS, "playground" if loc.playground else "checkout"}
    keep.add(GIT_SECRET_VOLUME)  # for the run's git-sync; there only if the repo has one
    pod_spec: dict[str, Any] = {"securityContext": {"fsGroup": FS_GROUP}}
    if not loc.playground:
        pod_spec["initContainers"] = [git_sync_container(fleet, loc, opts, one_time=True)]
    k8s: dict[str, Any] = {
        "namespace": c.namespace(fleet, loc.env),
        "serviceAccountName": CODE_SERVER_SA,
        "env": env,
        "labels": run_labels(fleet, loc),
        "resources": resources(fleet, loc),
        "securityContext": dict(CONTAINER_SECURITY),
        "volumes": [v for v in volumes if v["name"] in keep],
        "volumeMounts": [m for m in mounts if m["name"] in keep],
        "runK8sConfig": {"podSpecConfig": pod_spec},
    }
    return {"k8s": snake_case(k8s)}


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
        "resources": resources(fleet, loc),
        "volumeMounts": mounts,
        "securityContext": dict(CONTAINER_SECURITY),
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
        "securityContext": {"fsGroup": FS_GROUP},
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
