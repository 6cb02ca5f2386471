"""dagfleet-runtime: the small part of dagfleet that runs inside code locations.

`keys` confines user keys to a location's storage prefix, `storage` is the
helper user code may call, `compute_logs` routes step logs per location
(`locations` says where a run's logs belong), `s3_compute_logs` does the same in
S3 for the rendered deployments (it needs dagster-aws, so it is not imported
here). Only dagster is required; nothing here imports dagfleet.
"""

from dagfleet_runtime.compute_logs import LocationComputeLogManager, split_location
from dagfleet_runtime.keys import PrefixEscapeError, confine_local, normalize_key
from dagfleet_runtime.storage import LocationStorage

__all__ = [
    "LocationComputeLogManager",
    "LocationStorage",
    "PrefixEscapeError",
    "confine_local",
    "normalize_key",
    "split_location",
]
