"""Location status: Kubernetes-style conditions and their on-disk store.

Conditions are API: the CLI and the REST API return them unchanged.
"""

from dagfleet.status.conditions import Condition, LocationStatus, Reason, derive_ready
from dagfleet.status.store import StatusStore

__all__ = ["Condition", "LocationStatus", "Reason", "StatusStore", "derive_ready"]
