"""Step logs readable from the UI when runs execute away from the webserver (pods, tasks).

`dagfleet up` runs every step on the webserver's machine and routes its logs per
location with dagfleet_runtime's manager (dagfleet.storage.logs). In a cluster a
run pod's disk is invisible to the webserver, so the rendered instances use
Dagster's own `dagster_aws.s3.compute_log_manager.S3ComputeLogManager`: the run
worker uploads each step's stdout/stderr to S3 and the webserver reads them back
from there. Every image the renders run carries dagster-aws (the repo images of
`render dockerfile`, and the chart's webserver/daemon image), and nothing of
dagfleet needs to be installed beside Dagster for it.

Where it does not fit: the stock manager has one key prefix per instance, and it
writes `<prefix>/storage/<run_id>/compute_logs/<step>.{out,err}`. It cannot
choose the prefix per run, so the logs of an instance shared by the fleet's
environments (Kubernetes, ECS) live under one prefix of the fleet's bucket,
`<root>/_system/compute_logs` (no environment can be named `_system`, so it never
collides with `<root>/<env>/...`); compose runs an instance per environment,
whose logs go under that environment's reserved `<root>/<env>/system/compute_logs`.
Per-location prefixes would need a manager that reads the run's location, which
means dagfleet_runtime in the chart's webserver image (docs/deploy.md).

Only an s3:// storage root (or ECS, which always has a bucket) has somewhere to
put them: with a local root on Kubernetes nothing is rendered and the chart's
default (no step logs in the UI) stays.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dagfleet.render import common as c
from dagfleet.spec.models import Fleet

MODULE = "dagster_aws.s3.compute_log_manager"
CLASS = "S3ComputeLogManager"
# The instance-wide prefix, below the storage root (see the module docstring).
FLEET_PREFIX = "_system/compute_logs"
ENV_PREFIX = "system/compute_logs"
# Seconds between partial uploads of a running step, so the UI shows a long step's
# output before it ends.
UPLOAD_INTERVAL = 30
# dagster.yaml keys of the manager -> the chart's values keys (its template maps them back).
_CHART_KEYS = {
    "bucket": "bucket",
    "prefix": "prefix",
    "endpoint_url": "endpointUrl",
    "skip_empty_files": "skipEmptyFiles",
    "upload_interval": "uploadInterval",
}


def configured_by_user(fleet: Fleet) -> bool:
    """fleet.yaml's `instance.dagster.compute_logs` wins over the rendered manager."""
    return "compute_logs" in fleet.spec.instance.dagster


def s3_config(fleet: Fleet, bucket: str, env: str | None = None) -> dict[str, Any]:
    """The manager's dagster.yaml `config` (pure).

    `bucket` is used when the fleet's storage root is not s3:// (ECS's `s3_bucket`);
    `env` names the environment of a per-environment instance (compose), None an
    instance shared by the whole fleet.
    """
    name, base = c.bucket_and_prefix(c.s3_root(fleet, bucket))
    below = f"{env}/{ENV_PREFIX}" if env else FLEET_PREFIX
    config: dict[str, Any] = {
        "bucket": name,
        "prefix": f"{base}/{below}" if base else below,
        "skip_empty_files": True,
        "upload_interval": UPLOAD_INTERVAL,
    }
    if fleet.spec.storage.is_s3 and fleet.spec.storage.endpoint_url:
        config["endpoint_url"] = fleet.spec.storage.endpoint_url
    return config


def dagster_yaml_section(fleet: Fleet, bucket: str, env: str | None = None) -> dict[str, Any]:
    """`compute_logs:` of a dagster.yaml (ECS, compose)."""
    return {"module": MODULE, "class": CLASS, "config": s3_config(fleet, bucket, env)}


def chart_values(fleet: Fleet) -> dict[str, Any] | None:
    """The chart's `computeLogManager` value, or None when the fleet has no s3:// root
    (or sets `compute_logs` itself)."""
    if not fleet.spec.storage.is_s3 or configured_by_user(fleet):
        return None
    config = s3_config(fleet, "")
    return {
        "type": CLASS,
        "config": {"s3ComputeLogManager": {_CHART_KEYS[k]: v for k, v in config.items()}},
    }


def from_chart_values(values: Mapping[str, Any]) -> dict[str, Any]:
    """The dagster.yaml section the chart templates from a `computeLogManager` value of
    type S3ComputeLogManager (the inverse of `chart_values`, for tests and docs)."""
    back = {chart: key for key, chart in _CHART_KEYS.items()}
    config = values["config"]["s3ComputeLogManager"]
    return {"module": MODULE, "class": CLASS, "config": {back[k]: v for k, v in config.items()}}


def log_keys_prefix(config: Mapping[str, Any]) -> str:
    """Where the manager writes in its bucket: `<prefix>/storage/` (dagster-aws's layout)."""
    return f"{config['prefix']}/storage/"
