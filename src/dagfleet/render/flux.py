"""`render flux`: the Kubernetes render driven by Flux (seed 002) instead of kubectl + helm.

Result: the same `manifests/` as `render k8s`, with the Helm values moved into
`manifests/instance/release.yaml` (a HelmRepository for the official chart and
a HelmRelease with install/upgrade remediation and retries), and
`flux/sync.yaml` to apply once in `flux-system`: a GitRepository watching the
repository where `manifests/` is committed (interval 5m, as in seed 002) and a
Kustomization applying it with prune, wait and a timeout.

Options (FluxOptions): `repo_url`/`branch`/`path` of that deploy repository
(default: a placeholder URL to replace, branch main, ./manifests),
`interval` 5m, `chart_version` None (the chart of the dagster version the images
pin, `K8sOptions.helm_chart_version()`: never "whatever is newest", so a chart
release cannot change the instance behind the fleet's back), `retries` 3,
`status_records` None (`dagfleet release` passes its `status/<location>.json`
records: they become `manifests/instance/status.yaml`, the ConfigMap the
in-cluster API serves statuses from, when the render includes the API).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dagfleet.render import common as c
from dagfleet.render import helm_values as hv
from dagfleet.render import k8s_dagfleet
from dagfleet.render.k8s import render_k8s
from dagfleet.render.options import K8sOptions
from dagfleet.spec.models import Fleet

HELM_REPO_URL = "https://dagster-io.github.io/helm"


@dataclass(frozen=True)
class FluxOptions:
    repo_url: str = "https://git.example.com/dagfleet/deploy.git"
    branch: str = "main"
    path: str = "./manifests"
    interval: str = "5m"
    chart_version: str | None = None
    retries: int = 3
    k8s: K8sOptions = field(default_factory=K8sOptions)
    status_records: Mapping[str, str] | None = None


def sync_objects(fleet: Fleet, opts: FluxOptions) -> list[dict[str, Any]]:
    name = c.k8s_name(fleet.name)
    meta = {"name": name, "namespace": "flux-system", "labels": c.labels(fleet, "gitops")}
    return [
        {
            "apiVersion": "source.toolkit.fluxcd.io/v1",
            "kind": "GitRepository",
            "metadata": meta,
            "spec": {
                "interval": opts.interval,
                "url": opts.repo_url,
                "ref": {"branch": opts.branch},
            },
        },
        {
            "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
            "kind": "Kustomization",
            "metadata": meta,
            "spec": {
                "interval": "10m",
                "retryInterval": "1m",
                "path": opts.path,
                "prune": True,
                "wait": True,
                "timeout": "5m",
                "sourceRef": {"kind": "GitRepository", "name": name},
            },
        },
    ]


def release_objects(fleet: Fleet, opts: FluxOptions) -> list[dict[str, Any]]:
    ns = c.instance_namespace(fleet)
    chart: dict[str, Any] = {
        "chart": "dagster",
        "sourceRef": {"kind": "HelmRepository", "name": "dagster"},
    }
    chart["version"] = opts.chart_version or opts.k8s.helm_chart_version()
    remediation = {"retries": opts.retries}
    return [
        {
            "apiVersion": "source.toolkit.fluxcd.io/v1",
            "kind": "HelmRepository",
            "metadata": {"name": "dagster", "namespace": ns, "labels": c.labels(fleet, "gitops")},
            "spec": {"interval": "1h", "url": HELM_REPO_URL},
        },
        {
            "apiVersion": "helm.toolkit.fluxcd.io/v2",
            "kind": "HelmRelease",
            "metadata": {
                "name": opts.k8s.release_name,
                "namespace": ns,
                "labels": c.labels(fleet, "instance"),
            },
            "spec": {
                "interval": "10m",
                "timeout": "10m",
                "chart": {"spec": chart},
                "install": {"remediation": remediation},
                "upgrade": {
                    "remediation": {**remediation, "remediateLastFailure": True},
                    "cleanupOnFail": True,
                },
                "values": hv.helm_values(fleet, opts.k8s),
            },
        },
    ]


def render_flux(fleet: Fleet, opts: FluxOptions | None = None) -> c.Rendered:
    opts = opts or FluxOptions()
    files = {k: v for k, v in render_k8s(fleet, opts.k8s).items() if k != "values.yaml"}
    files["manifests/instance/release.yaml"] = release_objects(fleet, opts)
    if opts.status_records is not None and opts.k8s.dagfleet_api:
        files["manifests/instance/status.yaml"] = [
            k8s_dagfleet.status_configmap(fleet, opts.status_records)
        ]
    files["manifests/kustomization.yaml"]["resources"] = sorted(
        p.removeprefix("manifests/") for p in files if p != "manifests/kustomization.yaml"
    )
    files["flux/sync.yaml"] = sync_objects(fleet, opts)
    return files
