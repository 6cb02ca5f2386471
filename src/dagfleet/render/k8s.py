"""`render k8s`: every Kubernetes object of a fleet, plus the Helm values for the instance.

Layout of the result (the CLI writes it under --out):
- `values.yaml`: values for the official `dagster/dagster` chart (helm_values.py);
- `manifests/kustomization.yaml`: lists every manifest (`kubectl apply -k`, Flux);
- `manifests/instance/`: the instance Namespace `<fleet>`, the workspace
  ConfigMap, the instance database and the front door (`frontdoor.yaml`,
  k8s_frontdoor.py: the only way in to the UI; with `node_port` its Service is a
  NodePort, the chart's webserver Service always stays ClusterIP) and, with
  `dagfleet_api` (default), dagfleet itself (`dagfleet.yaml`, k8s_dagfleet.py:
  the API read-only over the fleet files and status records, webhooks, metrics,
  an optional ServiceMonitor);
- `manifests/<env>/`: per environment the Namespace `<fleet>-<env>` (seed 000),
  the code servers' ServiceAccount, a NetworkPolicy that lets only the instance
  namespace reach port 4000, a Role/RoleBinding letting the instance's service
  account run jobs there (K8sRunLauncher), the chart's `pipeline-env`
  ConfigMap the run pods of that namespace read (helm_values.run_env_configmap),
  the launcher ConfigMap, the environment database, and when storage is local the
  PVCs `data` (every repo's prefix and `shared/`) and bronze/silver/gold (seed
  001), mounted per repo with `subPath` (k8s_location.storage_volumes); in a
  playground environment the `playground` PVC (`playground-claim.yaml`);
  and one file per location with its Deployment and Service.
"""

from __future__ import annotations

from typing import Any

from dagfleet.playground_loader import LOADER as PLAYGROUND_LOADER
from dagfleet.render import common as c
from dagfleet.render import helm_values as hv
from dagfleet.render import k8s_dagfleet, k8s_frontdoor, postgres
from dagfleet.render import k8s_location as kl
from dagfleet.render.launcher import LAUNCHER_SOURCE
from dagfleet.render.options import K8sOptions
from dagfleet.spec.models import Fleet


def _namespace(fleet: Fleet, name: str, opts: K8sOptions, env: str | None) -> dict[str, Any]:
    extra = {"env": env} if env else {}
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": name,
            "labels": c.labels(fleet, "environment" if env else "instance", **extra),
            "annotations": {"dagfleet.dev/kubernetes-version": opts.kubernetes_version},
        },
    }


def _meta(fleet: Fleet, name: str, ns: str, component: str) -> dict[str, Any]:
    return {"name": name, "namespace": ns, "labels": c.labels(fleet, component)}


def environment_objects(fleet: Fleet, env: str, opts: K8sOptions) -> list[dict[str, Any]]:
    """The objects every location of an environment shares."""
    ns = c.namespace(fleet, env)
    instance_ns = c.instance_namespace(fleet)
    return [
        _namespace(fleet, ns, opts, env),
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": _meta(fleet, kl.CODE_SERVER_SA, ns, "code-server"),
        },
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": _meta(fleet, "code-servers-from-instance", ns, "code-server"),
            "spec": {
                "podSelector": {"matchLabels": {"app.kubernetes.io/component": "code-server"}},
                "policyTypes": ["Ingress"],
                "ingress": [
                    {
                        "from": [
                            {
                                "namespaceSelector": {
                                    "matchLabels": {"kubernetes.io/metadata.name": instance_ns}
                                }
                            }
                        ],
                        "ports": [{"protocol": "TCP", "port": c.CODE_PORT}],
                    }
                ],
            },
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": _meta(fleet, "dagster-run-launcher", ns, "instance"),
            "rules": [
                {
                    "apiGroups": ["batch"],
                    "resources": ["jobs", "jobs/status"],
                    "verbs": ["create", "delete", "get", "list", "watch"],
                },
                {
                    "apiGroups": [""],
                    "resources": ["pods", "pods/log", "pods/status", "events"],
                    "verbs": ["get", "list", "watch"],
                },
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": _meta(fleet, "dagster-run-launcher", ns, "instance"),
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": "dagster-run-launcher",
            },
            "subjects": [
                {"kind": "ServiceAccount", "name": hv.INSTANCE_SA, "namespace": instance_ns}
            ],
        },
        hv.run_env_configmap(fleet, opts, env),
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": _meta(fleet, "dagfleet-launcher", ns, "code-server"),
            "data": {"launch.py": LAUNCHER_SOURCE, c.PLAYGROUND_INIT: PLAYGROUND_LOADER},
        },
    ]


def storage_objects(fleet: Fleet, env: str, opts: K8sOptions) -> list[dict[str, Any]]:
    """An environment's claims when storage is local: `data` and seed 001's layers.

    Every location of the environment and every run pod of those locations mounts
    them (each under its own subPath), from any node: ReadWriteMany unless
    `opts.pvc_access_mode` says otherwise (ReadWriteOnce: one-node clusters only).
    """
    if fleet.spec.storage.is_s3:
        return []
    return [_claim(fleet, env, claim, opts.pvc_size, opts) for claim in (c.DATA_CLAIM, *c.LAYERS)]


def playground_claim(fleet: Fleet, env: str, opts: K8sOptions) -> dict[str, Any]:
    """The playground's files: what `kubectl cp` copies into the code server's pod is on
    this claim, so the run pods of `playground-<env>` (which mount it too) see the same
    code, and the files outlive a restart of the pod."""
    return _claim(fleet, env, c.PLAYGROUND_CLAIM, c.PLAYGROUND_CLAIM_SIZE, opts)


def _claim(fleet: Fleet, env: str, name: str, size: str, opts: K8sOptions) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "accessModes": [opts.pvc_access_mode],
        "resources": {"requests": {"storage": size}},
    }
    if opts.storage_class:
        spec["storageClassName"] = opts.storage_class
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": _meta(fleet, name, c.namespace(fleet, env), "storage"),
        "spec": spec,
    }


def render_k8s(fleet: Fleet, opts: K8sOptions | None = None) -> c.Rendered:
    opts = opts or K8sOptions()
    files: c.Rendered = {}
    files["manifests/instance/instance.yaml"] = [
        _namespace(fleet, c.instance_namespace(fleet), opts, None),
        hv.workspace_configmap(fleet),
    ]
    files["manifests/instance/frontdoor.yaml"] = k8s_frontdoor.objects(fleet, opts)
    if opts.dagfleet_api:
        files["manifests/instance/dagfleet.yaml"] = k8s_dagfleet.objects(fleet, opts)
    files["manifests/instance/postgres.yaml"] = postgres.instance_database(fleet, opts)
    for env in fleet.spec.environments:
        d = f"manifests/{c.k8s_name(env.name)}"
        files[f"{d}/environment.yaml"] = environment_objects(fleet, env.name, opts)
        files[f"{d}/postgres.yaml"] = postgres.env_database(fleet, opts, env.name)
        if not fleet.spec.storage.is_s3:
            files[f"{d}/storage.yaml"] = storage_objects(fleet, env.name, opts)
        if env.playground:
            files[f"{d}/playground-claim.yaml"] = [playground_claim(fleet, env.name, opts)]
    for loc in fleet.locations():
        d = f"manifests/{c.k8s_name(loc.env)}"
        files[f"{d}/{c.location_k8s_name(loc)}.yaml"] = [
            kl.deployment(fleet, loc, opts),
            kl.service(fleet, loc),
        ]
    files["manifests/kustomization.yaml"] = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": sorted(p.removeprefix("manifests/") for p in files),
    }
    files["values.yaml"] = hv.helm_values(fleet, opts)
    return files
