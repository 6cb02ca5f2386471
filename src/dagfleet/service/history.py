"""Reading the publish history for the front doors, with or without a running fleet.

The store is opened on the database fleet.yaml (and DAGSTER_POSTGRES_*) name,
the same one `dagfleet up` records into, and kept open while that stays the
same. Reading never makes the fleet's id nor the SQLite file.
"""

from __future__ import annotations

import builtins
import os
import threading

from dagfleet.control import ControlError
from dagfleet.history.models import PublishAttempt
from dagfleet.history.store import HistoryStore, database_url
from dagfleet.layout import Layout
from dagfleet.registry import Registry
from dagfleet.service.identity import ID_FILE
from dagfleet.spec import load_fleet

MAX_LIMIT = 1000


class HistoryReader:
    def __init__(self, registry: Registry, layout: Layout) -> None:
        self.registry = registry
        self.layout = layout
        self._store: HistoryStore | None = None
        self._lock = threading.Lock()

    def store(self) -> HistoryStore:
        url = database_url(self.registry.fleet_spec(), self.layout, os.environ)
        with self._lock:
            if self._store is None or self._store.url != url:
                if self._store is not None:
                    self._store.close()
                self._store = HistoryStore(url)
            return self._store

    def _fleet_id(self) -> str | None:
        try:
            return (self.layout.root / ID_FILE).read_text(encoding="utf-8").strip() or None
        except OSError:
            return None

    def read(
        self, location: str, limit: int, outcome: str | None = None
    ) -> builtins.list[PublishAttempt]:
        """The location's attempts, newest first; 404 for a location never known here."""
        if not 1 <= limit <= MAX_LIMIT:
            raise ControlError(f"limit: {limit} is out of range: give 1-{MAX_LIMIT}", 400)
        fleet = self._fleet_id()
        found = self.store().recent(fleet, location, limit, outcome) if fleet else []
        if found:
            return found
        known = {loc.name for loc in load_fleet(self.registry.root).locations()}
        if location not in known:
            raise ControlError(f"unknown location {location!r}: `dagfleet status` lists them", 404)
        return found

    def close(self) -> None:
        with self._lock:
            if self._store is not None:
                self._store.close()
                self._store = None
