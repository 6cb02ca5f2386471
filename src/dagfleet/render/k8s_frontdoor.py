"""The front door on Kubernetes, in the instance namespace beside the chart's webserver.

`manifests/instance/frontdoor.yaml` holds:
- the ConfigMap `<fleet>-fleet`: fleet.yaml and every repo file (frontdoor.fleet_files),
  mounted as the front door's fleet directory (a projected volume: the ConfigMap,
  plus the OIDC client secret when fleet.yaml names it `from_file` with a relative
  path);
- the ServiceAccount `dagfleet-frontdoor`, with no API token mounted (the front
  door never talks to the Kubernetes API);
- the Deployment `dagfleet-frontdoor` (`frontdoor_replicas`, default 1): `dagfleet
  frontdoor serve --upstream` the chart's webserver Service, probes on
  /auth/healthz, non-root with a read-only root filesystem and no privilege
  escalation; secrets only as references to the Secrets `dagfleet-frontdoor`
  (session-key, optional api-tokens, the OIDC client secret's key) and
  `dagfleet-frontdoor-users` (optional: the users file), which the operator
  creates (docs/deploy.md);
- the Service `dagfleet-frontdoor`: ClusterIP, or NodePort `node_port` (seed
  001's localhost:30000). The chart's webserver Service stays ClusterIP;
- the NetworkPolicy `dagster-webserver-ingress`: the webserver pods admit only
  the front door and the code servers of the fleet's environments (whose reload
  hook asks the webserver to reload their location), so no other pod in the
  cluster reaches the UI around the front door.
"""

from __future__ import annotations

import posixpath
from typing import Any

from dagfleet.render import common as c
from dagfleet.render import frontdoor as fd
from dagfleet.render.k8s_location import webserver_url
from dagfleet.render.options import K8sOptions
from dagfleet.spec.models import Fleet

NAME = "dagfleet-frontdoor"
USERS_DIR = "/etc/dagfleet/users"
USERS_PATH = f"{USERS_DIR}/{fd.USERS}"
OIDC_VOLUME = "oidc-client-secret"
# The image's user is not known here: run as a fixed non-root uid, with the Secret
# files group-readable through fsGroup.
RUN_AS = 10001
SECRET_MODE = 0o440


def fleet_configmap_name(fleet: Fleet) -> str:
    return c.k8s_name(fleet.name, "fleet")


def _key(path: str) -> str:
    """A ConfigMap key for a fleet file (keys cannot hold '/'): repos/x.yaml -> repos.x.yaml."""
    return path.replace("/", ".")


def selector(fleet: Fleet) -> dict[str, str]:
    return {"app.kubernetes.io/component": "frontdoor", "dagfleet.dev/fleet": fleet.name}


def webserver_selector(opts: K8sOptions) -> dict[str, str]:
    """The chart's webserver pod labels (selectorLabels + component)."""
    return {
        "app.kubernetes.io/name": "dagster",
        "app.kubernetes.io/instance": opts.release_name,
        "component": "dagster-webserver",
    }


def _meta(fleet: Fleet, name: str) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": c.instance_namespace(fleet),
        "labels": c.labels(fleet, "frontdoor"),
    }


def fleet_configmap(fleet: Fleet) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _meta(fleet, fleet_configmap_name(fleet)),
        "data": {_key(path): text for path, text in fd.fleet_files(fleet).items()},
    }


def _fleet_volume(fleet: Fleet) -> dict[str, Any]:
    items = [{"key": _key(path), "path": path} for path in fd.fleet_files(fleet)]
    sources: list[dict[str, Any]] = [
        {"configMap": {"name": fleet_configmap_name(fleet), "items": items}}
    ]
    oidc = fd.oidc_secret(fleet)
    if oidc is not None and oidc.path is not None and not oidc.path.startswith("/"):
        sources.append(
            {
                "secret": {
                    "name": fd.SECRET,
                    "items": [{"key": oidc.key, "path": oidc.relative_path()}],
                }
            }
        )
    return {"name": "fleet", "projected": {"sources": sources, "defaultMode": SECRET_MODE}}


def _env(fleet: Fleet) -> list[dict[str, Any]]:
    def ref(key: str, *, optional: bool = False) -> dict[str, Any]:
        selector: dict[str, Any] = {"name": fd.SECRET, "key": key}
        if optional:
            selector["optional"] = True
        return {"secretKeyRef": selector}

    env: list[dict[str, Any]] = [
        {"name": "DAGFLEET_SESSION_KEY", "valueFrom": ref(fd.SESSION_KEY)},
        {"name": "DAGFLEET_API_TOKENS", "valueFrom": ref(fd.API_TOKENS, optional=True)},
    ]
    oidc = fd.oidc_secret(fleet)
    if oidc is not None and oidc.env is not None:
        env.append({"name": oidc.env, "valueFrom": ref(oidc.key)})
    env += [{"name": "PYTHONUNBUFFERED", "value": "1"}, {"name": "HOME", "value": "/tmp"}]
    return env


def _volumes(fleet: Fleet) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    users = {"secretName": fd.USERS_SECRET, "optional": True, "defaultMode": SECRET_MODE}
    volumes: list[dict[str, Any]] = [
        _fleet_volume(fleet),
        {"name": "users", "secret": users},
        {"name": "tmp", "emptyDir": {}},
    ]
    mounts: list[dict[str, Any]] = [
        {"name": "fleet", "mountPath": fd.FLEET_DIR, "readOnly": True},
        {"name": "users", "mountPath": USERS_DIR, "readOnly": True},
        {"name": "tmp", "mountPath": "/tmp"},
    ]
    oidc = fd.oidc_secret(fleet)
    path = oidc.container_path() if oidc is not None else None
    if oidc is not None and path is not None and oidc.path and oidc.path.startswith("/"):
        name = posixpath.basename(path)
        secret = {
            "secretName": fd.SECRET,
            "items": [{"key": oidc.key, "path": name}],
            "defaultMode": SECRET_MODE,
        }
        volumes.append({"name": OIDC_VOLUME, "secret": secret})
        mounts.append({"name": OIDC_VOLUME, "mountPath": path, "subPath": name, "readOnly": True})
    return volumes, mounts


def container(fleet: Fleet, opts: K8sOptions) -> dict[str, Any]:
    _, mounts = _volumes(fleet)
    probe = {"httpGet": {"path": fd.HEALTH_PATH, "port": "http"}, "timeoutSeconds": 3}
    return {
        "name": "frontdoor",
        "image": opts.frontdoor(),
        "imagePullPolicy": "Always",
        "command": fd.command(
            webserver_url(fleet, opts), users_file=USERS_PATH, public_url=opts.public_url
        ),
        "env": _env(fleet),
        "ports": [{"name": "http", "containerPort": fd.FRONTDOOR_PORT}],
        "readinessProbe": {**probe, "periodSeconds": 5},
        "livenessProbe": {**probe, "periodSeconds": 20, "failureThreshold": 3},
        "resources": {
            "requests": {"cpu": "100m", "memory": "256Mi"},
            "limits": {"memory": "512Mi"},
        },
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
    labels = {**c.labels(fleet, "frontdoor"), **match}
    volumes, _ = _volumes(fleet)
    spec: dict[str, Any] = {
        "serviceAccountName": NAME,
        "automountServiceAccountToken": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": RUN_AS,
            "runAsGroup": RUN_AS,
            "fsGroup": RUN_AS,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [container(fleet, opts)],
        "volumes": volumes,
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(fleet, NAME),
        "spec": {
            "replicas": opts.frontdoor_replicas,
            "selector": {"matchLabels": match},
            "template": {"metadata": {"labels": labels}, "spec": spec},
        },
    }


def service(fleet: Fleet, opts: K8sOptions) -> dict[str, Any]:
    port: dict[str, Any] = {"name": "http", "port": 80, "targetPort": "http"}
    spec: dict[str, Any] = {"type": "ClusterIP", "selector": selector(fleet)}
    if opts.node_port is not None:
        spec["type"] = "NodePort"
        port["nodePort"] = opts.node_port
    spec["ports"] = [port]
    return {"apiVersion": "v1", "kind": "Service", "metadata": _meta(fleet, NAME), "spec": spec}


def webserver_policy(fleet: Fleet, opts: K8sOptions) -> dict[str, Any]:
    """Only the front door, and the code servers (reload), reach the webserver pods."""
    sources: list[dict[str, Any]] = [{"podSelector": {"matchLabels": selector(fleet)}}]
    for env in fleet.spec.environments:
        sources.append(
            {
                "namespaceSelector": {
                    "matchLabels": {"kubernetes.io/metadata.name": c.namespace(fleet, env.name)}
                },
                "podSelector": {"matchLabels": {"app.kubernetes.io/component": "code-server"}},
            }
        )
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _meta(fleet, "dagster-webserver-ingress"),
        "spec": {
            "podSelector": {"matchLabels": webserver_selector(opts)},
            "policyTypes": ["Ingress"],
            "ingress": [{"from": sources}],
        },
    }


def objects(fleet: Fleet, opts: K8sOptions) -> list[dict[str, Any]]:
    return [
        fleet_configmap(fleet),
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": _meta(fleet, NAME),
            "automountServiceAccountToken": False,
        },
        deployment(fleet, opts),
        service(fleet, opts),
        webserver_policy(fleet, opts),
    ]


def secret_commands(fleet: Fleet) -> list[str]:
    """The kubectl commands creating the front door's Secrets (placeholders, no values)."""
    ns = c.instance_namespace(fleet)
    data = [
        f'--from-literal={fd.SESSION_KEY}="$SESSION_KEY"',
        f'--from-literal={fd.API_TOKENS}="$API_TOKENS"',
    ]
    oidc = fd.oidc_secret(fleet)
    if oidc is not None:
        data.append(f'--from-literal={oidc.key}="$OIDC_CLIENT_SECRET"')
    return [
        f"kubectl -n {ns} create secret generic {fd.SECRET} " + " ".join(data),
        f"kubectl -n {ns} create secret generic {fd.USERS_SECRET} "
        f"--from-file={fd.USERS}=.dagfleet/users",
    ]
