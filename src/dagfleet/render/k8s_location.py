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

A location named in `K8sOptions.commits` is pinned to that exact commit
(issue 15): git-sync runs once, as a plain init container, with `--ref=<sha>`
(no branch to follow, no webhook: a new commit is a new pod template, so a
rolling update). The code server is Ready only once its definitions loaded
(`launch.py --probe` asks it for its repositories over gRPC), and the rolling
update keeps the old pod serving until the new one is Ready (maxUnavailable 0,
maxSurge 1, progressDeadlineSeconds), so a commit that does not load never
receives traffic. The commit is the label and annotation `dagfleet.dev/commit`
on the Deployment and its pods and DAGFLEET_COMMIT in the code server; the run
pods' one-time git-sync (the container context) checks out the same commit, so
a run executes the commit its code server loaded even if the branch moved.
A git URL that only exists on the rendering machine is refused (RenderError).
"""

from __future__ import annotations

import json
import re
import shlex
from typing import Any

from dagfleet.render import common as c
from dagfleet.render import compute_logs, postgres
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
COMMIT_KEY = "dagfleet.dev/commit"
REF_KEY = "dagfleet.dev/ref"
# A pinned Deployment reports failure when its new pod is not Ready within this time
# (dependencies in the image, a slow definitions load); the old pod keeps serving.
PROGRESS_DEADLINE_SECONDS = 900


def check_commit_locations(fleet: Fleet, opts: K8sOptions) -> None:
    """Every name in `opts.commits` is a location of the fleet that can be pinned: a typo
    would otherwise leave the location following its branch without a word."""
    known = {loc.name for loc in fleet.locations() if not loc.playground}
    unknown = sorted(set(opts.commits) - known)
    if unknown:
        raise c.RenderError(
            f"commits: {', '.join(unknown)}: not a location of fleet {fleet.name} that can be "
            f"pinned (known: {', '.join(sorted(known)) or 'none'}; playgrounds have no commit)"
        )


def pinned_commit(loc: LocationSpec, opts: K8sOptions) -> str | None:
    """The exact commit `opts.commits` pins the location to (playgrounds have none)."""
    commit = None if loc.playground else opts.commits.get(loc.name)
    return None if commit is None else c.check_commit(loc.name, commit)


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
    commit = pinned_commit(loc, opts)
    args = [
        f"--repo={repo.git_url}",
        f"--ref={commit or loc.pin or loc.ref}",
        f"--root={c.CHECKOUT_DIR}",
        f"--link={c.CHECKOUT_LINK}",
        "--depth=1",
        *git_credentials_args(fleet, loc),
    ]
    # Pinned: nothing to follow, so the code server's checkout is one-time too.
    one_time = one_time or commit is not None
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


def commit_labels(loc: LocationSpec, opts: K8sOptions) -> dict[str, str]:
    """`dagfleet.dev/commit` of a pinned location (a 40-hex SHA is a valid label value)."""
    commit = pinned_commit(loc, opts)
    return {} if commit is None else {COMMIT_KEY: commit}


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
    and security settings, plus a one-time git-sync so the run sees the code:
    of the pinned commit when the location has one (the commit the code server
    loaded), else of the ref; a playground's runs mount its playground claim instead.
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
        "labels": {**run_labels(fleet, loc), **commit_labels(loc, opts)},
        "resources": resources(fleet, loc),
        "securityContext": dict(CONTAINER_SECURITY),
        "volumes": [v for v in volumes if v["name"] in keep],
        "volumeMounts": [m for m in mounts if m["name"] in keep],
        "runK8sConfig": {"podSpecConfig": pod_spec},
    }
    return {"k8s": snake_case(k8s)}


def code_server_container(fleet: Fleet, loc: LocationSpec, opts: K8sOptions) -> dict[str, Any]:
    code_dir = f"{c.CHECKOUT_DIR}/{c.CHECKOUT_LINK}"
    commit = pinned_commit(loc, opts)
    env = env_entries(fleet, loc, storage_env(fleet, loc)) + postgres.env_database_vars(
        fleet, loc.env
    )
    if commit is not None:
        # In the code server and, through the container context, in every run pod.
        env.append({"name": "DAGFLEET_COMMIT", "value": commit})
    image = playground_image(fleet, opts) if loc.playground else opts.repo_image(loc.repo)
    control = {
        "DAGFLEET_CODE_DIR": c.working_dir(fleet, loc, code_dir),
        "DAGFLEET_PORT": str(c.CODE_PORT),
    }
    if commit is None:
        # git-sync's webhook after each publish; a pinned pod never changes commit.
        control["DAGFLEET_RELOAD_PORT"] = str(c.RELOAD_PORT)
        control["DAGFLEET_WEBSERVER_URL"] = webserver_url(fleet, opts)
    control |= {
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
        "readinessProbe": readiness_probe(commit is not None),
        "resources": resources(fleet, loc),
        "volumeMounts": mounts,
        "securityContext": dict(CONTAINER_SECURITY),
    }


def readiness_probe(pinned: bool) -> dict[str, Any]:
    """Pinned: Ready once the definitions loaded (`launch.py --probe`, see launcher.py);
    otherwise the server answers gRPC (today's probe: a reload flips the code in place)."""
    if not pinned:
        return {
            "exec": {"command": ["dagster", "api", "grpc-health-check", "-p", str(c.CODE_PORT)]},
            "periodSeconds": 10,
            "timeoutSeconds": 5,
        }
    return {
        "exec": {"command": ["python", c.LAUNCHER_PATH, "--probe"]},
        "initialDelaySeconds": 5,
        "periodSeconds": 5,
        "timeoutSeconds": 25,
        "failureThreshold": 3,
    }


def playground_image(fleet: Fleet, opts: K8sOptions) -> str:
    """Playgrounds have no repo of their own: they run the image the webserver and daemon
    run (the first repo's, which carries dagfleet-runtime, so the instance's step-log
    manager loads in their run pods too); the official Dagster image when the fleet has
    no repo."""
    first = compute_logs.instance_image_repo(fleet)
    if first is not None:
        return opts.repo_image(first)
    return f"docker.io/dagster/dagster-k8s:{opts.dagster_version}"


def webserver_url(fleet: Fleet, opts: K8sOptions) -> str:
    ns = c.instance_namespace(fleet)
    return f"http://{opts.release_name}-dagster-webserver.{ns}.svc.cluster.local:80"


def deployment(fleet: Fleet, loc: LocationSpec, opts: K8sOptions) -> dict[str, Any]:
    if not loc.playground:
        c.require_remote_git_urls(fleet, "Kubernetes")
    check_commit_locations(fleet, opts)
    name = c.location_k8s_name(loc)
    selector = {"dagfleet.dev/location": name}
    labels = {
        **c.labels(fleet, "code-server", env=loc.env, repo=loc.repo),
        **selector,
        **commit_labels(loc, opts),
    }
    commit = pinned_commit(loc, opts)
    annotations = {} if commit is None else {COMMIT_KEY: commit, REF_KEY: loc.pin or loc.ref}
    volumes, _ = _volumes(fleet, loc)
    spec: dict[str, Any] = {
        "serviceAccountName": CODE_SERVER_SA,
        "securityContext": {"fsGroup": FS_GROUP},
        "containers": [code_server_container(fleet, loc, opts)],
        "volumes": volumes,
    }
    if not loc.playground:
        spec["initContainers"] = [git_sync_container(fleet, loc, opts)]
    meta: dict[str, Any] = {"name": name, "namespace": c.namespace(fleet, loc.env)}
    meta["labels"] = labels
    template: dict[str, Any] = {"labels": labels}
    if annotations:
        meta["annotations"] = template["annotations"] = annotations
    deploy_spec: dict[str, Any] = {
        "replicas": 1,
        # Playground files live in the pod, and a following pod reloads in place: never
        # two copies. A pinned commit rolls: the old pod serves until the new one is Ready.
        "strategy": {"type": "Recreate"},
        "selector": {"matchLabels": selector},
        "template": {"metadata": template, "spec": spec},
    }
    if commit is not None:
        deploy_spec["strategy"] = {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
        }
        deploy_spec["progressDeadlineSeconds"] = PROGRESS_DEADLINE_SECONDS
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta, "spec": deploy_spec}


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


def git_sync_equivalent(args: list[str]) -> str:
    """The git commands a one-time git-sync with `args` runs, as a POSIX sh script.

    git-sync v4 with `--one-time`: a repository at `--root`, `git fetch --depth
    <depth> <repo> <ref>`, a detached worktree `<root>/.worktrees/<hash>` and the
    symlink `<root>/<link>` to it. No cluster or git-sync binary is needed to run
    it, so tests run the run pod's checkout step exactly as rendered. Credentials
    flags are not translated (the tests use public remotes).
    """
    flags = dict(a.removeprefix("--").split("=", 1) for a in args if "=" in a)
    if "--one-time" not in args:
        raise ValueError("only a one-time git-sync has a finite equivalent")
    q = shlex.quote
    root, link = q(flags["root"]), q(flags["link"])
    return "\n".join(
        [
            "set -eu",
            f"mkdir -p {root}",
            f"git -C {root} init --quiet",
            f"git -C {root} fetch --quiet --depth {q(flags.get('depth', '1'))} "
            f"{q(flags['repo'])} {q(flags['ref'])}",
            f'hash=$(git -C {root} rev-parse "FETCH_HEAD^{{commit}}")',
            f'git -C {root} worktree add --quiet --detach "{flags["root"]}/.worktrees/$hash" '
            '"$hash"',
            f'ln -sfn ".worktrees/$hash" {root}/{link}',
            "",
        ]
    )
