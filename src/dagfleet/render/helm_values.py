"""Values for the official `dagster/dagster` chart, plus the workspace ConfigMap they point at.

The chart runs the central webserver and daemon only: the user-deployments
subchart is off because dagfleet renders the code servers itself (git-sync,
per-environment namespaces), and the webserver reads an external ConfigMap
`<fleet>-workspace` listing every location as a `grpc_server` at
`<service>.<namespace>.svc.cluster.local:4000`. Runs go through the
K8sRunLauncher; each code server's container context sends its runs to its
environment's namespace (the chart's `jobNamespace` is one namespace for all
runs, so it stays unset). Storage is the external Postgres from `postgres.py`.

A run pod reads the chart's `pipeline-env` ConfigMap and Postgres Secret by
name, in the namespace it runs in; the chart creates them in its own namespace
only, so every environment namespace gets `run_env_configmap` (k8s.py) and the
operator creates the Secret there too (docs/deploy.md).

The chart's Service schema has no nodePort field, so the NodePort 30000 option
is a separate Service (`k8s.py`), not a value.
"""

from __future__ import annotations

from typing import Any

import yaml

from dagfleet.render import common as c
from dagfleet.render import k8s_location as kl
from dagfleet.render import postgres
from dagfleet.render.options import K8sOptions
from dagfleet.spec.models import Fleet

INSTANCE_SA = "dagster"


def chart_fullname(opts: K8sOptions) -> str:
    """The chart's `dagster.fullname`: the release name when it contains "dagster"."""
    release = opts.release_name
    name = release if "dagster" in release else f"{release}-dagster"
    return name[: c.MAX_NAME].rstrip("-")


def run_env_configmap(fleet: Fleet, opts: K8sOptions, env: str) -> dict[str, Any]:
    """The chart's `<fullname>-pipeline-env` ConfigMap, in an environment's namespace.

    The chart's K8sRunLauncher gives every run pod `envFrom` this ConfigMap (its
    `env_config_maps`), and dagster-k8s creates the run Job in the namespace of the
    location's container context, where the chart never creates it: without this
    copy the run pods of `<fleet>-<env>` could not start. (The instance itself
    reaches run workers as an argument of `dagster api execute_run`; no instance
    ConfigMap is mounted.) Values as in the chart's `dagster.shared_env`.
    """
    ns = c.namespace(fleet, env)
    name = f"{chart_fullname(opts)}-pipeline-env"
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": ns, "labels": c.labels(fleet, "instance", env=env)},
        "data": {
            "DAGSTER_HOME": c.DAGSTER_HOME,
            "DAGSTER_K8S_PIPELINE_RUN_NAMESPACE": ns,
            "DAGSTER_K8S_PIPELINE_RUN_ENV_CONFIGMAP": name,
        },
    }


def workspace_name(fleet: Fleet) -> str:
    return c.k8s_name(fleet.name, "workspace")


def workspace_document(fleet: Fleet) -> dict[str, Any]:
    return {
        "load_from": [
            {
                "grpc_server": {
                    "host": kl.service_host(fleet, loc),
                    "port": c.CODE_PORT,
                    "location_name": loc.name,
                }
            }
            for loc in fleet.locations()
        ]
    }


def workspace_configmap(fleet: Fleet) -> dict[str, Any]:
    text = yaml.safe_dump(workspace_document(fleet), sort_keys=False)
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": workspace_name(fleet),
            "namespace": c.instance_namespace(fleet),
            "labels": c.labels(fleet, "workspace"),
        },
        # The chart mounts the ConfigMap and starts the webserver with `-w .../workspace.yaml`.
        "data": {"workspace.yaml": text},
    }


def helm_values(fleet: Fleet, opts: K8sOptions) -> dict[str, Any]:
    ns = c.instance_namespace(fleet)
    values: dict[str, Any] = {
        "global": {"postgresqlSecretName": postgres.INSTANCE_SECRET},
        "serviceAccount": {"create": True, "name": INSTANCE_SA},
        "dagster-user-deployments": {"enabled": False, "enableSubchart": False},
        "dagsterWebserver": {
            "service": {"type": "ClusterIP", "port": 80},
            "workspace": {
                "enabled": True,
                "servers": [],
                "externalConfigmap": workspace_name(fleet),
            },
        },
        "runLauncher": {
            "type": "K8sRunLauncher",
            "config": {
                "k8sRunLauncher": {
                    "imagePullPolicy": "Always",
                    "loadInclusterConfig": True,
                    "labels": {"app.kubernetes.io/part-of": "dagfleet"},
                }
            },
        },
        "postgresql": {
            "enabled": False,
            "postgresqlHost": postgres.host(postgres.INSTANCE_DB, ns),
            "postgresqlUsername": "dagster",
            # The password comes from global.postgresqlSecretName; this value is unused.
            "postgresqlPassword": "",
            "postgresqlDatabase": "dagster",
            "service": {"port": 5432},
        },
        "generatePostgresqlPasswordSecret": False,
    }
    if fleet.spec.instance.run_queue is not None:
        queue = fleet.spec.instance.run_queue
        values["dagsterDaemon"] = {
            "runCoordinator": {
                "enabled": True,
                "type": "QueuedRunCoordinator",
                "config": {
                    "queuedRunCoordinator": {
                        "maxConcurrentRuns": queue.max_concurrent_runs,
                        "dequeueIntervalSeconds": queue.dequeue_interval_seconds,
                    }
                },
            }
        }
    return values


def nodeport_service(fleet: Fleet, opts: K8sOptions, node_port: int) -> dict[str, Any]:
    """Seed 001's `localhost:30000`: a NodePort Service in front of the chart's webserver pods."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": c.k8s_name(opts.release_name, "webserver-nodeport"),
            "namespace": c.instance_namespace(fleet),
            "labels": c.labels(fleet, "webserver"),
        },
        "spec": {
            "type": "NodePort",
            # The chart's webserver pod labels (selectorLabels + component).
            "selector": {
                "app.kubernetes.io/name": "dagster",
                "app.kubernetes.io/instance": opts.release_name,
                "component": "dagster-webserver",
            },
            "ports": [{"name": "http", "port": 80, "targetPort": 80, "nodePort": node_port}],
        },
    }
