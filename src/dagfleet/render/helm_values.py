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

Step logs: with an s3:// storage root, `computeLogManager` is dagfleet-runtime's
LocationS3ComputeLogManager (Dagster's S3ComputeLogManager writing under each
run's location prefix, render/compute_logs.py) as the chart's
CustomComputeLogManager, so the UI shows the stdout/stderr a run pod uploaded;
the webserver and daemon then run the first repo's image, which carries
dagfleet-runtime (the chart's default image does not; playgrounds run that image
too). In a fleet with no repo it is the chart's plain S3ComputeLogManager type;
with a local root the chart's default (none) stays.

The webserver's Service stays ClusterIP: users reach the UI through dagfleet's
front door (k8s_frontdoor.py), whose Service carries the NodePort option.

fleet.yaml's `instance.dagster` settings become the chart's own values where it
has them (`dagsterDaemon.runMonitoring`, `runRetries`, `sensors`, `schedules`,
`retention`, `telemetry`); every other section goes to `additionalInstanceConfig`,
which the chart appends to its dagster.yaml unchanged. A key inside a section the
chart templates itself but has no value for (e.g. run_monitoring's
`cancellation_thread_poll_interval_seconds`) cannot reach the chart's dagster.yaml:
the render logs a warning naming it instead of dropping it silently.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import yaml

from dagfleet.render import common as c
from dagfleet.render import compute_logs, postgres
from dagfleet.render import k8s_location as kl
from dagfleet.render.options import K8sOptions
from dagfleet.spec.models import Fleet

INSTANCE_SA = "dagster"
log = logging.getLogger(__name__)

# Sections of dagster.yaml the chart templates from its own values, and the keys it
# has values for (values.yaml of the official chart).
_DAEMON_SECTIONS: dict[str, tuple[str, frozenset[str]]] = {
    "run_monitoring": (
        "runMonitoring",
        frozenset(
            {
                "enabled",
                "start_timeout_seconds",
                "cancel_timeout_seconds",
                "max_runtime_seconds",
                "poll_interval_seconds",
                "max_resume_run_attempts",
                "free_slots_after_run_end_seconds",
            }
        ),
    ),
    "run_retries": (
        "runRetries",
        frozenset({"enabled", "max_retries", "retry_on_asset_or_op_failure"}),
    ),
    "sensors": ("sensors", frozenset({"use_threads", "num_workers", "num_submit_workers"})),
    "schedules": ("schedules", frozenset({"use_threads", "num_workers", "num_submit_workers"})),
}
_RETENTION = {"schedule": "schedule", "sensor": "sensor", "auto_materialize": "autoMaterialize"}


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


def _camel(key: str) -> str:
    first, *rest = key.split("_")
    return first + "".join(part.title() for part in rest)


def _chart_section(name: str, settings: Mapping[str, Any], known: frozenset[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in settings.items():
        if key in known:
            out[_camel(key)] = value
        else:
            log.warning(
                "fleet.yaml: instance.dagster.%s.%s: the dagster Helm chart has no value for "
                "it, so the rendered instance does not set it (set it in the chart's "
                "dagster.yaml by hand, or remove it)",
                name,
                key,
            )
    return out


def instance_values(settings: Mapping[str, Any]) -> dict[str, Any]:
    """fleet.yaml's `instance.dagster` as chart values (see the module docstring)."""
    values: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for name, section in settings.items():
        if name in _DAEMON_SECTIONS:
            chart_key, known = _DAEMON_SECTIONS[name]
            daemon = values.setdefault("dagsterDaemon", {})
            daemon[chart_key] = _chart_section(name, section, known)
        elif name == "telemetry":
            values["telemetry"] = {"enabled": bool(section.get("enabled", True))}
        elif name == "retention":
            values["retention"] = {
                "enabled": True,
                **{
                    _RETENTION[kind]: {"purgeAfterDays": tick["purge_after_days"]}
                    for kind, tick in section.items()
                },
            }
        else:
            extra[name] = section
    if extra:
        values["additionalInstanceConfig"] = extra
    return values


def instance_image(fleet: Fleet, opts: K8sOptions) -> dict[str, Any]:
    """The chart's `image` value of the webserver and daemon when they need
    dagfleet-runtime: the first repo's image (render/compute_logs.py)."""
    repo = compute_logs.instance_image_repo(fleet) or "dagster"
    return {
        "repository": f"{opts.registry.rstrip('/')}/{repo}",
        "tag": opts.image_tag,
        "pullPolicy": "Always",
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
    logs = compute_logs.chart_values(fleet)
    if logs is not None:
        # Step logs in the UI: run pods upload them to S3, the webserver reads them there.
        values["computeLogManager"] = logs
        if logs["type"] == "CustomComputeLogManager":
            # dagfleet-runtime's manager: the webserver and daemon load it too, so they
            # run an image carrying it (the first repo's, as on ECS and compose).
            image = instance_image(fleet, opts)
            values["dagsterWebserver"]["image"] = dict(image)
            values.setdefault("dagsterDaemon", {})["image"] = dict(image)
    for key, value in instance_values(fleet.spec.instance.dagster).items():
        if key == "dagsterDaemon":
            values.setdefault("dagsterDaemon", {}).update(value)
        else:
            values[key] = value
    return values
