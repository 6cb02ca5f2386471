"""Step logs readable from the UI when runs execute away from the webserver (pods, tasks).

`dagfleet up` runs every step on the webserver's machine and routes its logs per
location with dagfleet_runtime's manager (dagfleet.storage.logs). In a cluster a
run pod's disk is invisible to the webserver, so the rendered instances use
`dagfleet_runtime.s3_compute_logs.LocationS3ComputeLogManager`: Dagster's own
`dagster_aws` S3ComputeLogManager (the run worker uploads each step's
stdout/stderr to S3, every UPLOAD_INTERVAL seconds while it runs and when it
ends, and the webserver reads them back from there) with one change, the key
prefix is the run's location's:

    <root>/<env>/<repo prefix>/logs/<run_id>/compute_logs/<step>.{out,err}

the same layout as `dagfleet up`'s, inside the prefix the location's own storage
(and, on ECS, its task role) already has. The manager reads the run's location
from the run record, takes `<repo>-<env>` apart with the fleet's environment
names (`environments`) and looks the repo's prefix up in `repo_prefixes` (every
repo's `repos/<repo>` or `s3_prefix`, written here from the repo files). Keys
of no known location (sensor and schedule ticks, a run of an unknown location)
keep the stock layout under the instance-wide `prefix`: `<root>/_system/compute_logs`
for an instance shared by the fleet's environments (Kubernetes, ECS; no
environment can be named `_system`), `<root>/<env>/system/compute_logs` for
compose's instance per environment.

Every process that loads the instance needs dagfleet-runtime and dagster-aws:
the repo images of `render dockerfile` carry both (the runtime is written into
the image by the render itself, render/dockerfile.py), and the renders run the
webserver and daemon from the first repo's image (ECS and compose always did;
on Kubernetes the chart's `dagsterWebserver.image`/`dagsterDaemon.image`).
A Kubernetes playground's code server and run pods run that image too
(k8s_location.playground_image). A fleet with no repo has no such image and
keeps the stock S3ComputeLogManager (one prefix for the fleet), with a warning.

Only an s3:// storage root (or ECS, which always has a bucket) has somewhere to
put them: with a local root on Kubernetes nothing is rendered and the chart's
default (no step logs in the UI) stays. fleet.yaml's `instance.dagster.compute_logs`
wins over all of this.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from dagfleet.render import common as c
from dagfleet.spec.models import Fleet
from dagfleet.storage.logs import prefixes_document

log = logging.getLogger(__name__)

MODULE = "dagfleet_runtime.s3_compute_logs"
CLASS = "LocationS3ComputeLogManager"
# Dagster's own manager, which the dagfleet one extends (and the fallback, see below).
STOCK_MODULE = "dagster_aws.s3.compute_log_manager"
STOCK_CLASS = "S3ComputeLogManager"
# The instance-wide prefix, below the storage root (see the module docstring).
FLEET_PREFIX = "_system/compute_logs"
ENV_PREFIX = "system/compute_logs"
# Below a location's prefix: where its runs' step logs are (as with `dagfleet up`).
LOGS_DIR = "logs"
# Seconds between partial uploads of a running step, so the UI shows a long step's
# output before it ends.
UPLOAD_INTERVAL = 30
# dagster.yaml keys of the stock manager -> the chart's values keys (its template maps
# them back); the chart's S3ComputeLogManager type has no place for the routing keys.
_CHART_KEYS = {
    "bucket": "bucket",
    "prefix": "prefix",
    "endpoint_url": "endpointUrl",
    "skip_empty_files": "skipEmptyFiles",
    "upload_interval": "uploadInterval",
}
_ROUTING_KEYS = ("location_root", "environments", "repo_prefixes")


def configured_by_user(fleet: Fleet) -> bool:
    """fleet.yaml's `instance.dagster.compute_logs` wins over the rendered manager."""
    return "compute_logs" in fleet.spec.instance.dagster


def repo_prefixes(fleet: Fleet) -> dict[str, str]:
    """`{repo: prefix}` as `dagfleet up`'s prefixes file lists them (a monorepo's
    `<repo>-<entry>` too, see dagfleet.storage.logs)."""
    prefixes: dict[str, str] = json.loads(prefixes_document(fleet))
    return prefixes


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
        "location_root": base,
        "environments": [e.name for e in fleet.spec.environments],
        "repo_prefixes": repo_prefixes(fleet),
        "skip_empty_files": True,
        "upload_interval": UPLOAD_INTERVAL,
    }
    if fleet.spec.storage.is_s3 and fleet.spec.storage.endpoint_url:
        config["endpoint_url"] = fleet.spec.storage.endpoint_url
    return config


def dagster_yaml_section(fleet: Fleet, bucket: str, env: str | None = None) -> dict[str, Any]:
    """`compute_logs:` of a dagster.yaml (ECS, compose)."""
    return {"module": MODULE, "class": CLASS, "config": s3_config(fleet, bucket, env)}


def stock_section(config: Mapping[str, Any]) -> dict[str, Any]:
    """Dagster's own S3ComputeLogManager with the same bucket and instance prefix (the
    fallback where dagfleet-runtime cannot be imported everywhere, see the module
    docstring)."""
    stock = {k: v for k, v in config.items() if k not in _ROUTING_KEYS}
    return {"module": STOCK_MODULE, "class": STOCK_CLASS, "config": stock}


def chart_values(fleet: Fleet) -> dict[str, Any] | None:
    """The chart's `computeLogManager` value, or None when the fleet has no s3:// root
    (or sets `compute_logs` itself).

    The chart's `CustomComputeLogManager` type takes any class; in a fleet with no repo
    (no image carrying dagfleet-runtime) it is the chart's own `S3ComputeLogManager`
    type instead, with a warning.
    """
    if not fleet.spec.storage.is_s3 or configured_by_user(fleet):
        return None
    if routed_on_kubernetes(fleet):
        section = dagster_yaml_section(fleet, "")
        return {"type": "CustomComputeLogManager", "config": {"customComputeLogManager": section}}
    stock = stock_section(s3_config(fleet, ""))["config"]
    return {
        "type": STOCK_CLASS,
        "config": {"s3ComputeLogManager": {_CHART_KEYS[k]: v for k, v in stock.items()}},
    }


def routed_on_kubernetes(fleet: Fleet) -> bool:
    """True when every Kubernetes process loading the instance carries dagfleet-runtime:
    the webserver, the daemon and the playgrounds run the first repo's image
    (`instance_image_repo`). Warns when not (a fleet with no repo)."""
    if fleet.repos:
        return True
    why = "the fleet has no repo, hence no image carrying dagfleet-runtime"
    log.warning(
        "step logs: %s, so the Kubernetes instance keeps Dagster's S3ComputeLogManager "
        "with one prefix for the fleet (%s) instead of each location's logs/ prefix",
        why,
        FLEET_PREFIX,
    )
    return False


def instance_image_repo(fleet: Fleet) -> str | None:
    """The repo whose image runs the webserver and daemon (as on ECS: the first repo by
    name), or None when the fleet has none."""
    return sorted(fleet.repos)[0] if fleet.repos else None


def from_chart_values(values: Mapping[str, Any]) -> dict[str, Any]:
    """The dagster.yaml section the chart templates from a `computeLogManager` value
    (the inverse of `chart_values`, for tests and docs)."""
    if values["type"] == "CustomComputeLogManager":
        custom = values["config"]["customComputeLogManager"]
        return {"module": custom["module"], "class": custom["class"], "config": custom["config"]}
    back = {chart: key for key, chart in _CHART_KEYS.items()}
    config = values["config"]["s3ComputeLogManager"]
    return {
        "module": STOCK_MODULE,
        "class": STOCK_CLASS,
        "config": {back[k]: v for k, v in config.items()},
    }


def log_keys_prefix(config: Mapping[str, Any]) -> str:
    """Where keys of no known location go: `<prefix>/storage/` (dagster-aws's layout)."""
    return f"{config['prefix']}/storage/"


def location_logs_prefix(location_prefix: str) -> str:
    """A location's step logs below its storage prefix (`<root>/<env>/<repo prefix>`)."""
    return f"{location_prefix.rstrip('/')}/{LOGS_DIR}"
