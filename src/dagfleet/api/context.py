"""What every request handler reaches: settings, the fleet's service and cached statuses."""

from __future__ import annotations

import functools
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from fastapi import Request
from pydantic import TypeAdapter

from dagfleet.api.settings import ApiSettings
from dagfleet.api.webhook import Deliveries
from dagfleet.control import Controller
from dagfleet.frontdoor.identity import Keeper
from dagfleet.frontdoor.serve import FleetFiles, keeper_for
from dagfleet.layout import Layout
from dagfleet.service import FleetIdentity, FleetService
from dagfleet.status import LocationStatus

_STATUSES = TypeAdapter(list[LocationStatus])


class StatusCache:
    """The controller's statuses and their JSON, re-read at most every `ttl` seconds.

    Many clients polling /locations then cost one read of the status files, and
    one serialisation, per period instead of one each. Past the period, readers
    get the previous answer while one background thread re-reads (stale while
    revalidate); after an API write (`invalidate`) the next reader waits for
    fresh data so a client always sees its own change.
    """

    def __init__(self, controller: Controller, ttl: float) -> None:
        self.controller = controller
        self.ttl = ttl
        self._lock = threading.Lock()
        self._at = float("-inf")
        self._valid = False
        self._generation = 0
        self._refreshing = False
        self._statuses: list[LocationStatus] = []
        self._json = b"[]"

    def fresh(self) -> bool:
        """True if `get` can answer without blocking."""
        if not self._valid or self.ttl <= 0:
            return False
        if time.monotonic() - self._at >= self.ttl and not self._refreshing:
            self._refreshing = True
            threading.Thread(target=self._background, name="status-cache", daemon=True).start()
        return True

    def invalidate(self) -> None:
        self._generation += 1
        self._valid = False

    def _background(self) -> None:
        try:
            self.refresh(force=True)
        finally:
            self._refreshing = False

    def refresh(self, force: bool = False) -> None:
        with self._lock:
            if self._valid and not force and self.ttl > 0:
                return  # another thread refreshed while this one waited
            generation = self._generation
            started = time.monotonic()
            statuses = list(self.controller.statuses())
            same = len(statuses) == len(self._statuses) and all(
                a is b for a, b in zip(statuses, self._statuses, strict=True)
            )
            if not same:  # controllers hand back the same objects while nothing changed
                self._json = _STATUSES.dump_json(statuses)
            self._statuses = statuses
            self._at = started
            # An invalidate() during the read wins: the next reader reads again.
            self._valid = generation == self._generation

    def get(self) -> tuple[list[LocationStatus], bytes]:
        if not self.fresh():
            self.refresh()
        return self._statuses, self._json


@dataclass
class ApiContext:
    settings: ApiSettings
    service: FleetService
    statuses: StatusCache
    ready: Callable[[], bool] | None = None
    stopping: threading.Event = field(default_factory=threading.Event)
    # Recent webhook deliveries, to answer a replay with a no-op (api/webhook.py).
    deliveries: Deliveries = field(default_factory=Deliveries)

    @functools.cached_property
    def keeper(self) -> Keeper:
        """Who is who: the front door's own keeper under `dagfleet up`, else one built
        from the settings (tokens) and the fleet's files (users, sessions)."""
        if self.settings.keeper is not None:
            return self.settings.keeper
        root = self.settings.fleet_dir
        return keeper_for(
            root,
            Layout.for_fleet(root).root,
            self.settings.host,
            FleetFiles(root),
            os.environ,
            tokens=self.settings.tokens,
            local_token=self.settings.local_token,
        )

    @functools.cached_property
    def identity(self) -> FleetIdentity:
        """Read once: the fleet's name and id do not change while it runs."""
        return self.service.identity()


async def get_ctx(request: Request) -> ApiContext:
    # async: FastAPI would otherwise hand this to a worker thread on every request.
    ctx: ApiContext = request.app.state.ctx
    return ctx
