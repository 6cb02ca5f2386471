"""dagfleet's service layer: what the fleet does on request, whoever asks.

`FleetService` is called by the REST API's routes and by the CLI when no fleet
runs; neither front door validates, writes files or drives the runtime itself.
"""

from dagfleet.service.fleet import FleetService
from dagfleet.service.models import (
    DeleteResult,
    EnvironmentOut,
    ErrorBody,
    FleetIdentity,
    Problem,
    PromoteRequest,
    RepoResource,
    SyncResult,
)

__all__ = [
    "DeleteResult",
    "EnvironmentOut",
    "ErrorBody",
    "FleetIdentity",
    "FleetService",
    "Problem",
    "PromoteRequest",
    "RepoResource",
    "SyncResult",
]
