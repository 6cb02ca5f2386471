"""dagfleet-runtime: the small part of dagfleet that runs inside code locations.

`keys` confines user keys to a location's storage prefix, `storage` is the
helper user code may call, `compute_logs` routes step logs per location.
Only dagster is required; nothing here imports dagfleet.
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
