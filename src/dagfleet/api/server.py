"""Serving the API: uvicorn in a background thread, started and stopped by `dagfleet up`."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from fastapi import FastAPI

from dagfleet.api.app import create_app
from dagfleet.api.context import ApiContext
from dagfleet.api.settings import ApiSettings, SettingsError, check_bind
from dagfleet.control import Controller
from dagfleet.frontdoor.identity import Keeper
from dagfleet.frontdoor.serve import is_loopback
from dagfleet.uvthread import ThreadedServer

if TYPE_CHECKING:
    from dagfleet.audit.writer import AuditWriter

log = logging.getLogger(__name__)


class ApiServer(ThreadedServer):
    """The API's uvicorn thread; stopping first ends log followers so shutdown is quick."""

    def __init__(self, app: FastAPI, host: str, port: int) -> None:
        super().__init__(app, host, port, "dagfleet API")

    def stop(self) -> None:
        ctx: ApiContext | None = getattr(self.app.state, "ctx", None)
        if ctx is not None:
            ctx.stopping.set()
        super().stop()


def serve(
    settings: ApiSettings,
    controller: Controller,
    ready: Callable[[], bool] | None = None,
    audit: AuditWriter | None = None,
) -> ApiServer:
    """Check the bind, build the app and start it; raises SettingsError when unsafe."""
    refusal = check_bind(settings.host, settings.tokens)
    if refusal:
        raise SettingsError(refusal)
    if not settings.tokens and is_loopback(settings.host):
        log.warning(
            "dagfleet API: no tokens configured (DAGFLEET_API_TOKENS), so it listens on "
            "%s only and anyone on this machine may use it",
            settings.host,
        )
    app = create_app(settings, controller, ready, audit)
    server = ApiServer(app, settings.host, settings.port)
    server.start()
    return server


def start_api(
    fleet_dir: Path,
    host: str,
    port: int,
    controller: Controller,
    ready: Callable[[], bool],
    keeper: Keeper | None = None,
    audit: AuditWriter | None = None,
) -> ApiServer:
    """What `dagfleet up` calls: settings from its flags and the environment.

    `ready` reports whether the Dagster webserver answers (readyz); `audit` is the
    fleet's audit writer (`FleetApp.audit`), which the API's service records into.
    """
    settings = ApiSettings.from_env(fleet_dir, host=host, port=port)
    if keeper is not None:
        settings = dataclasses.replace(settings, keeper=keeper)
    return serve(settings, controller, ready, audit)
