"""The storage variables of one location's code server."""

from __future__ import annotations

from dagfleet.spec import Fleet
from dagfleet.storage.paths import storage_paths

ENDPOINT_VAR = "DAGFLEET_S3_ENDPOINT_URL"
# Standard variable honoured by boto3, s3fs, obstore and Polars alike.
AWS_ENDPOINT_VAR = "AWS_ENDPOINT_URL"


def location_env(fleet: Fleet, repo: str, env: str, root: str | None = None) -> dict[str, str]:
    """DAGFLEET_STORAGE_ROOT and friends for `repo` in `env` (pure); `root` replaces the
    fleet's storage root (renderers: the root as their containers see it).

    The endpoint URL is not a secret and comes from fleet.yaml; credentials
    never do: they reach the code server only through the AWS_* variables of
    dagfleet's own environment (passed through by the runtime).
    """
    p = storage_paths(fleet, repo, env, root)
    out = {
        "DAGFLEET_STORAGE_ROOT": p.location,
        "DAGFLEET_ASSETS": p.assets,
        "DAGFLEET_RUNS": p.runs,
        "DAGFLEET_LOGS": p.logs,
        "DAGFLEET_SHARED": p.shared,
        "DAGFLEET_TEMP": p.temp,
    }
    endpoint = fleet.spec.storage.endpoint_url
    if p.remote and endpoint:
        out[ENDPOINT_VAR] = endpoint
        out[AWS_ENDPOINT_VAR] = endpoint
    return out
