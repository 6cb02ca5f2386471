"""`create_app`: the FastAPI application serving everything under /api/v1."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from fastapi import APIRouter, FastAPI, Response

from dagfleet.api import (
    page,
    routes_audit,
    routes_fleet,
    routes_locations,
    routes_playground,
    routes_repos,
)
from dagfleet.api.auth import Read
from dagfleet.api.context import ApiContext, StatusCache
from dagfleet.api.errors import BodyLimit, install_handlers
from dagfleet.api.routes_alerts import router as alerts_router
from dagfleet.api.settings import ApiSettings
from dagfleet.control import Controller
from dagfleet.service import FleetService
from dagfleet.service.audit import ANONYMOUS

if TYPE_CHECKING:
    from dagfleet.audit.writer import AuditWriter

PREFIX = "/api/v1"


def create_app(
    settings: ApiSettings,
    controller: Controller,
    ready: Callable[[], bool] | None = None,
    audit: AuditWriter | None = None,
) -> FastAPI:
    """The API for one fleet; `ready` reports whether the Dagster instance is up (readyz).

    `audit`: the running fleet's audit writer; without one, entries are written at once.
    """
    app = FastAPI(
        title="dagfleet",
        version="1",
        summary="GitOps control plane for self-hosted Dagster: repos, locations, promotion.",
        openapi_url=f"{PREFIX}/openapi.json",
        docs_url=f"{PREFIX}/docs",
        redoc_url=None,
    )
    service = FleetService(settings.fleet_dir, controller, actor=ANONYMOUS, audit=audit)
    statuses = StatusCache(controller, settings.status_cache_seconds)
    service.listeners.append(statuses.invalidate)
    app.state.ctx = ApiContext(settings=settings, service=service, statuses=statuses, ready=ready)
    install_handlers(app)
    api = APIRouter(prefix=PREFIX)
    api.include_router(routes_repos.router)
    api.include_router(routes_fleet.router)
    api.include_router(routes_playground.router)
    api.include_router(alerts_router)
    api.include_router(routes_locations.router)
    api.include_router(routes_audit.router)
    app.include_router(api)
    # Where Prometheus scrapers look by default; the same handler and auth as /api/v1/metrics.
    app.add_api_route(
        "/metrics",
        routes_fleet.prometheus,
        methods=["GET"],
        dependencies=[Read],
        response_class=Response,
        include_in_schema=False,
    )
    page.install(app)  # the status page at /, outside /api/v1
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    return app
