"""The fleet specification: typed, immutable models of fleet.yaml and repos/*.yaml.

Everything else in dagfleet reads a `Fleet`; only `load` touches the files.
"""

from dagfleet.spec.errors import SpecError, SpecProblem
from dagfleet.spec.load import load_fleet, load_repo_file, parse_repo
from dagfleet.spec.models import (
    CodeTarget,
    EnvironmentSpec,
    EnvVar,
    Fleet,
    FleetSpec,
    InstanceSpec,
    LocationSpec,
    PostgresSpec,
    RepoSpec,
    Resources,
    StorageSpec,
)

__all__ = [
    "CodeTarget",
    "EnvVar",
    "EnvironmentSpec",
    "Fleet",
    "FleetSpec",
    "InstanceSpec",
    "LocationSpec",
    "PostgresSpec",
    "RepoSpec",
    "Resources",
    "SpecError",
    "SpecProblem",
    "StorageSpec",
    "load_fleet",
    "load_repo_file",
    "parse_repo",
]
