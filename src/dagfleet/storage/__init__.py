"""Storage isolation per location (seed 004) for local directories and S3.

`paths` computes the layout `<root>/<env>/<repo prefix>/{assets,runs,logs}` and
`<root>/<env>/{shared,system,temp}`; `environ` turns it into the variables a
code server receives; `layout` creates the local directories; `logs` writes the
`compute_logs:` section of dagster.yaml and the repo prefixes it routes by.
All pure except `ensure_layout` and `write_prefixes`.
Credentials are never read from fleet files: S3 access keys stay in the
environment dagfleet itself runs with (AWS_* are passed through).
"""

from dagfleet.storage.environ import ENDPOINT_VAR, location_env
from dagfleet.storage.layout import ensure_layout
from dagfleet.storage.logs import compute_logs_config, write_prefixes
from dagfleet.storage.paths import StoragePaths, storage_paths, storage_root

__all__ = [
    "ENDPOINT_VAR",
    "StoragePaths",
    "compute_logs_config",
    "ensure_layout",
    "location_env",
    "storage_paths",
    "storage_root",
    "write_prefixes",
]
