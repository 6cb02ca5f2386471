"""dagfleet itself in the cluster: its API, webhooks and metrics, in the instance namespace.

`manifests/instance/dagfleet.yaml` (with `K8sOptions.dagfleet_api`, the default) holds:
- the ConfigMap `dagfleet-api-program` with `serve.py` (SERVER_SOURCE below), the program
  the Deployment runs with the image's Python (and with `deploy_repo`, the ConfigMap
  `dagfleet-fleet`: the fleet files whole, see below);
- the ServiceAccount `dagfleet`, with no API token mounted and no Role: dagfleet in
  the cluster reads its files, answers HTTP and (with `deploy_repo`) talks to git; it
  never calls the Kubernetes API (Flux applies the manifests, Kubernetes rolls the
  code servers);
- the Deployment `dagfleet` (one replica): the image carrying dagfleet (the front
  door's, `K8sOptions.frontdoor()`), non-root with a read-only root filesystem, no
  privilege escalation and no capabilities, probes on `/api/v1/healthz`; tokens
  from the Secret `dagfleet-api` (key `api-tokens`, required: the API refuses a
  non-loopback address without them; `webhook-secret`, optional: without it
  webhooks are refused), which the operator creates (docs/deploy.md);
- the Service `dagfleet` (ClusterIP, port 80 named `http`): `/api/v1`, the
  webhook route and `/metrics`;
- with `K8sOptions.service_monitor`, a Prometheus Operator ServiceMonitor scraping
  `/metrics` with the bearer token in `dagfleet-api`'s `metrics-token` (no CRD for
  it is vendored here, so it is kept to the fields of `monitoring.coreos.com/v1`
  that have been stable for years; unit tests check its shape only).

What it serves: the same FastAPI app as `dagfleet up`, over dagfleet's offline
controller (repos, environments and locations from the fleet files it copies at
start; location statuses from the optional ConfigMap `<fleet>-status`,
`status/<location>.json` as the release flow records them; alerts and metrics over
those) wrapped by the release controller (dagfleet.release.incluster):

- Without `K8sOptions.deploy_repo` (the default) nothing acts: sync, promote and push
  webhooks answer 503 naming the setting (a signed webhook is verified first, 401 when
  wrong); releases run in CI (`dagfleet release`). The fleet files are the front
  door's ConfigMap `<fleet>-fleet`.
- With `deploy_repo` (plus `deploy_branch`, `deploy_path`; the release flow sets
  those two to its own), the pod is the cluster's judge: a verified push queues
  `release run` for the environments whose location follows the pushed branch
  (202 Accepted, the locations queued), `POST /repos/{name}/sync` queues the same
  and `POST /promote` runs `release promote`, one at a time, written and pushed to
  the deploy repository, which Flux applies. The API serves each outcome as soon as
  it is pushed. For that the pod gets: the fleet files whole in a ConfigMap of its
  own, `dagfleet-fleet` (the judge needs build steps, environment and uv controls,
  which the front door's copy leaves out); DAGFLEET_DEPLOY_REPO/_BRANCH/_PATH; the
  optional Secret `dagfleet-deploy-repo` (`token` [+ `username`], or `ssh` [+
  `known_hosts`]) read-only at DEPLOY_CREDENTIALS_DIR; mirrors, environments,
  checkouts and the uv cache on the `work` emptyDir; 1Gi requested, 2Gi limit (a
  code server loads the definitions beside the API); and the Recreate strategy, so
  a rollout never runs two release workers. The `from_env` references of the repo
  files (environment values, git tokens) resolve from the pod's variables: the
  optional Secret `dagfleet-release-env` provides them, every key a variable
  (`from_file` references need files at those paths in the pod: not rendered). The
  image must carry git and uv (docs/deploy.md, "Front door -> Image"). A `file://`
  or path deploy_repo is refused. Least privilege is unchanged: it talks to git,
  never to the Kubernetes API.

Edits made through this API land in the pod's copy of the fleet files and are gone
at its next start: change the fleet in git. The copy is taken at start; the pod
template carries a hash of the fleet files, so a change of them rolls the Deployment.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import yaml

from dagfleet.render import common as c
from dagfleet.render import frontdoor as fd
from dagfleet.render import k8s_frontdoor as door
from dagfleet.render.options import K8sOptions
from dagfleet.spec.models import Fleet

NAME = "dagfleet"
SECRET = "dagfleet-api"
API_TOKENS = "api-tokens"
WEBHOOK_SECRET = "webhook-secret"
METRICS_TOKEN = "metrics-token"
PORT = 3030
HEALTH_PATH = "/api/v1/healthz"
PROGRAM_DIR = "/opt/dagfleet-api"
PROGRAM = "serve.py"
PROGRAM_CONFIGMAP = "dagfleet-api-program"
WORK_DIR = "/var/lib/dagfleet"
FLEET_COPY = f"{WORK_DIR}/fleet"
STATUS_DIR = f"{FLEET_COPY}/.dagfleet/status"
# The deploy repository's credentials (optional Secret): `token` (+ `username`) or
# `ssh` (+ `known_hosts`), mounted read-only where DAGFLEET_DEPLOY_CREDENTIALS_DIR says.
DEPLOY_SECRET = "dagfleet-deploy-repo"
DEPLOY_CREDENTIALS_DIR = "/etc/dagfleet/deploy-repo"
UV_CACHE_DIR = f"{WORK_DIR}/uv-cache"
# With a deploy repository, the fleet files whole (the judge needs each repo's build
# steps, environment, uv controls and credential references, which the front door's
# copy leaves out): a ConfigMap of dagfleet's own.
RELEASE_FLEET_CONFIGMAP = "dagfleet-fleet"
# Optional: every key becomes a variable of the pod, for the `from_env` references of
# the repo files (environment values, git tokens) the judge resolves as `dagfleet up` does.
RELEASE_ENV_SECRET = "dagfleet-release-env"

# Run by the image's Python; imports only dagfleet (installed in the image).
SERVER_SOURCE = '''"""dagfleet's API in the cluster (rendered by dagfleet, k8s_dagfleet.py).

Copies the fleet files (a read-only ConfigMap) to a writable directory, holds the
fleet's lock there so that the recorded statuses are shown as recorded, and serves
the API on DAGFLEET_API_PORT, every address, over the offline controller; with
DAGFLEET_DEPLOY_REPO set, pushes, syncs and promotions become releases into that
deploy repository (dagfleet.release.incluster).
"""

import fcntl
import os
import shutil
import sys
from pathlib import Path


def copy_fleet(source, target):
    target.mkdir(parents=True, exist_ok=True)
    (target / "repos").mkdir(exist_ok=True)
    for path in [source / "fleet.yaml", *sorted((source / "repos").glob("*.yaml"))]:
        shutil.copyfile(path, target / path.relative_to(source))


def main():
    import uvicorn

    from dagfleet.api.app import create_app
    from dagfleet.api.settings import ApiSettings, check_bind
    from dagfleet.gitops.urls import hide_credentials
    from dagfleet.layout import Layout
    from dagfleet.offline import OfflineController
    from dagfleet.release.incluster import start as releasing
    from dagfleet.release.releaser import ReleaseError
    from dagfleet.status.liveness import lock_path

    env = os.environ
    fleet_dir = Path(env["DAGFLEET_FLEET_DIR"])
    copy_fleet(Path(env["DAGFLEET_FLEET_SOURCE"]), fleet_dir)
    settings = ApiSettings.from_env(fleet_dir, host="0.0.0.0", port=int(env["DAGFLEET_API_PORT"]))
    refusal = check_bind(settings.host, settings.tokens)
    if refusal:
        print(f"dagfleet api: {refusal}", file=sys.stderr)
        return 2
    layout = Layout.for_fleet(fleet_dir)
    layout.root.mkdir(parents=True, exist_ok=True)
    lock = os.open(lock_path(layout), os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    try:
        controller = releasing(OfflineController(fleet_dir), fleet_dir, env)
    except ReleaseError as exc:
        print(f"dagfleet api: {exc}", file=sys.stderr)
        return 2
    if controller.queue is None:
        print("dagfleet api: no deploy repository (DAGFLEET_DEPLOY_REPO): releases are off")
    else:
        where = hide_credentials(env["DAGFLEET_DEPLOY_REPO"])
        print(f"dagfleet api: pushes release into {where}")
    app = create_app(settings, controller)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="info")
    return 0


if __name__ == "__main__":
    sys.exit(main())
'''


def _key(path: str) -> str:
    """A fleet file's key in `<fleet>-fleet`, as k8s_frontdoor writes it: repos.x.yaml."""
    return path.replace("/", ".")


def status_configmap_name(fleet: Fleet) -> str:
    """The optional ConfigMap of `status/<location>.json` records the API serves."""
    return c.k8s_name(fleet.name, "status")


def status_configmap(fleet: Fleet, records: Mapping[str, str]) -> dict[str, Any]:
    """The ConfigMap `<fleet>-status` the API reads its location statuses from.

    `records` maps a location name to its status record, the JSON of a
    `LocationStatus` (what `dagfleet release` keeps as `status/<location>.json`);
    each becomes the key `<location>.json`, the file name the status store reads.
    The release flow can write it beside the manifests it renders (pure).
    """
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _meta(fleet, status_configmap_name(fleet)),
        "data": {f"{name}.json": records[name] for name in sorted(records)},
    }


def selector(fleet: Fleet) -> dict[str, str]:
    return {"app.kubernetes.io/component": "dagfleet", "dagfleet.dev/fleet": fleet.name}


def _meta(fleet: Fleet, name: str) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": c.instance_namespace(fleet),
        "labels": c.labels(fleet, "dagfleet"),
    }


def release_fleet_files(fleet: Fleet) -> dict[str, str]:
    """fleet.yaml and every repo file whole, as `load_fleet` reads them back (references
    only, never a secret's value): what a judge in the pod needs."""
    out = {fd.FLEET_FILE: _dump(fleet.spec.model_dump(mode="json", exclude_defaults=True))}
    for name in sorted(fleet.repos):
        repo = fleet.repos[name].model_dump(mode="json", exclude_defaults=True)
        out[f"{fd.REPOS_DIR}/{name}.yaml"] = _dump(repo)
    return out


def _dump(document: dict[str, Any]) -> str:
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True)


def _fleet_files(fleet: Fleet, opts: K8sOptions | None) -> dict[str, str]:
    if opts is not None and opts.deploy_repo:
        return release_fleet_files(fleet)
    return fd.fleet_files(fleet)


def _fleet_configmap_name(fleet: Fleet, opts: K8sOptions | None) -> str:
    if opts is not None and opts.deploy_repo:
        return RELEASE_FLEET_CONFIGMAP
    return door.fleet_configmap_name(fleet)


def release_fleet_configmap(fleet: Fleet) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _meta(fleet, RELEASE_FLEET_CONFIGMAP),
        "data": {_key(path): text for path, text in sorted(release_fleet_files(fleet).items())},
    }


def fleet_files_hash(fleet: Fleet, opts: K8sOptions | None = None) -> str:
    """A digest of the fleet files the pod copies at start (rolls the pod on change)."""
    digest = hashlib.sha256()
    for path, text in sorted(_fleet_files(fleet, opts).items()):
        digest.update(f"{path}\0{text}\0".encode())
    return digest.hexdigest()[:16]


def program_configmap(fleet: Fleet) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _meta(fleet, PROGRAM_CONFIGMAP),
        "data": {PROGRAM: SERVER_SOURCE},
    }


def _secret_ref(key: str, *, optional: bool = False) -> dict[str, Any]:
    ref: dict[str, Any] = {"name": SECRET, "key": key}
    if optional:
        ref["optional"] = True
    return {"secretKeyRef": ref}


def _volumes(fleet: Fleet, opts: K8sOptions) -> list[dict[str, Any]]:
    items = [{"key": _key(path), "path": path} for path in _fleet_files(fleet, opts)]
    fleet_cm = {"name": _fleet_configmap_name(fleet, opts), "items": items}
    volumes: list[dict[str, Any]] = [
        {"name": "program", "configMap": {"name": PROGRAM_CONFIGMAP}},
        {"name": "fleet", "configMap": fleet_cm},
        {
            "name": "status",
            "configMap": {"name": status_configmap_name(fleet), "optional": True},
        },
        {"name": "work", "emptyDir": {}},
        {"name": "tmp", "emptyDir": {}},
    ]
    if opts.deploy_repo:
        volumes.append(
            {
                "name": "deploy-credentials",
                "secret": {"secretName": DEPLOY_SECRET, "optional": True, "defaultMode": 0o400},
            }
        )
    return volumes


def deploy_repo_problems(opts: K8sOptions) -> list[str]:
    """What is wrong with the deploy repository settings (each message names the fix)."""
    out = []
    url = opts.deploy_repo
    if url and c.is_local_git_url(url):
        out.append(
            f"deploy_repo: {url} is a path on this machine, which the cluster's dagfleet "
            "cannot reach: give the deploy repository's URL on your git server (the one "
            "Flux reads, e.g. ssh://git@git.example.com/platform/deploy.git), with its "
            f"credentials in the Secret {DEPLOY_SECRET} (docs/deploy.md)"
        )
    path = opts.deploy_path.strip("/")
    if ".." in path.split("/"):
        out.append(f"deploy_path: {opts.deploy_path!r} must stay inside the deploy repository")
    return out


def _release_env(opts: K8sOptions) -> list[dict[str, Any]]:
    """Where the in-cluster releases go (incluster.deploy_from_env); none: releases off."""
    if not opts.deploy_repo:
        return []
    return [
        {"name": "DAGFLEET_DEPLOY_REPO", "value": opts.deploy_repo},
        {"name": "DAGFLEET_DEPLOY_BRANCH", "value": opts.deploy_branch},
        {"name": "DAGFLEET_DEPLOY_PATH", "value": opts.deploy_path.strip("/")},
        {"name": "DAGFLEET_DEPLOY_CREDENTIALS_DIR", "value": DEPLOY_CREDENTIALS_DIR},
        {"name": "UV_CACHE_DIR", "value": UV_CACHE_DIR},
    ]


def _resources(opts: K8sOptions) -> dict[str, Any]:
    """The API alone is small; judging runs installs and a code server loading the
    definitions beside it (one at a time), so releasing asks for more."""
    if opts.deploy_repo:
        return {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"memory": "2Gi"}}
    return {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "512Mi"}}


def container(fleet: Fleet, opts: K8sOptions) -> dict[str, Any]:
    probe = {"httpGet": {"path": HEALTH_PATH, "port": "http"}, "timeoutSeconds": 3}
    mounts: list[dict[str, Any]] = [
        {"name": "program", "mountPath": PROGRAM_DIR, "readOnly": True},
        {"name": "fleet", "mountPath": fd.FLEET_DIR, "readOnly": True},
        {"name": "work", "mountPath": WORK_DIR},
        {"name": "status", "mountPath": STATUS_DIR, "readOnly": True},
        {"name": "tmp", "mountPath": "/tmp"},
    ]
    if opts.deploy_repo:
        mounts.append(
            {"name": "deploy-credentials", "mountPath": DEPLOY_CREDENTIALS_DIR, "readOnly": True}
        )
    return {
        "name": NAME,
        "image": opts.frontdoor(),
        "imagePullPolicy": "Always",
        "command": ["python", f"{PROGRAM_DIR}/{PROGRAM}"],
        "env": [
            {"name": "DAGFLEET_FLEET_SOURCE", "value": fd.FLEET_DIR},
            {"name": "DAGFLEET_FLEET_DIR", "value": FLEET_COPY},
            {"name": "DAGFLEET_API_PORT", "value": str(PORT)},
            {"name": "DAGFLEET_API_TOKENS", "valueFrom": _secret_ref(API_TOKENS)},
            {
                "name": "DAGFLEET_WEBHOOK_SECRET",
                "valueFrom": _secret_ref(WEBHOOK_SECRET, optional=True),
            },
            {"name": "PYTHONUNBUFFERED", "value": "1"},
            {"name": "HOME", "value": "/tmp"},
            *_release_env(opts),
        ],
        **(
            {"envFrom": [{"secretRef": {"name": RELEASE_ENV_SECRET, "optional": True}}]}
            if opts.deploy_repo
            else {}
        ),
        "ports": [{"name": "http", "containerPort": PORT}],
        "readinessProbe": {**probe, "periodSeconds": 5},
        "livenessProbe": {**probe, "periodSeconds": 20, "failureThreshold": 3},
        "resources": _resources(opts),
        "volumeMounts": mounts,
        "securityContext": {
            "runAsNonRoot": True,
            "readOnlyRootFilesystem": True,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
        },
    }


def deployment(fleet: Fleet, opts: K8sOptions) -> dict[str, Any]:
    match = selector(fleet)
    spec: dict[str, Any] = {
        "serviceAccountName": NAME,
        "automountServiceAccountToken": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": door.RUN_AS,
            "runAsGroup": door.RUN_AS,
            "fsGroup": door.RUN_AS,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [container(fleet, opts)],
        "volumes": _volumes(fleet, opts),
    }
    template_meta = {
        "labels": {**c.labels(fleet, "dagfleet"), **match},
        "annotations": {"dagfleet.dev/fleet-files": fleet_files_hash(fleet, opts)},
    }
    out: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(fleet, NAME),
        "spec": {
            # One replica: with a deploy repository it is the one release worker (a second
            # would judge every push twice); without one, one reader is enough.
            "replicas": 1,
            "selector": {"matchLabels": match},
            "template": {"metadata": template_meta, "spec": spec},
        },
    }
    if opts.deploy_repo:
        # Never two release workers during a rollout: the old pod stops before the new
        # one starts (webhooks sent in those seconds fail; the next push, or a sync,
        # releases the tip, which is all a missed push would have released).
        out["spec"]["strategy"] = {"type": "Recreate"}
    return out


def service(fleet: Fleet) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(fleet, NAME),
        "spec": {
            "type": "ClusterIP",
            "selector": selector(fleet),
            "ports": [{"name": "http", "port": 80, "targetPort": "http"}],
        },
    }


def service_monitor(fleet: Fleet) -> dict[str, Any]:
    """Prometheus Operator's ServiceMonitor for `/metrics` (a viewer token: the metrics
    route needs read access)."""
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": _meta(fleet, NAME),
        "spec": {
            "selector": {"matchLabels": selector(fleet)},
            "endpoints": [
                {
                    "port": "http",
                    "path": "/metrics",
                    "interval": "30s",
                    "authorization": {
                        "type": "Bearer",
                        "credentials": {"name": SECRET, "key": METRICS_TOKEN},
                    },
                }
            ],
        },
    }


def objects(fleet: Fleet, opts: K8sOptions) -> list[dict[str, Any]]:
    problems = deploy_repo_problems(opts)
    if problems:
        raise c.RenderError("\n".join(problems))
    out = [
        program_configmap(fleet),
        *([release_fleet_configmap(fleet)] if opts.deploy_repo else []),
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": _meta(fleet, NAME),
            "automountServiceAccountToken": False,
        },
        deployment(fleet, opts),
        service(fleet),
    ]
    if opts.service_monitor:
        out.append(service_monitor(fleet))
    return out


def secret_command(fleet: Fleet) -> str:
    """The kubectl command creating `dagfleet-api` (placeholders, no values)."""
    ns = c.instance_namespace(fleet)
    return (
        f"kubectl -n {ns} create secret generic {SECRET} "
        f'--from-literal={API_TOKENS}="$API_TOKENS" '
        f'--from-literal={WEBHOOK_SECRET}="$WEBHOOK_SECRET" '
        f'--from-literal={METRICS_TOKEN}="$METRICS_TOKEN"'
    )
