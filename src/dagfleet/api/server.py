"""Serving the API: uvicorn in a background thread, started and stopped by `dagfleet up`."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from dagfleet.api.app import create_app
from dagfleet.api.context import ApiContext
from dagfleet.api.settings import ApiSettings, SettingsError, check_bind, is_loopback
from dagfleet.control import Controller

log = logging.getLogger(__name__)


class ApiServer:
    """One uvicorn server on its own thread and event loop."""

    def __init__(self, app: FastAPI, host: str, port: int) -> None:
        self.app = app
        self.host = host
        self.port = port
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self, timeout: float = 30.0) -> None:
        """Return once the server accepts connections; raise if it could not start."""
        config = uvicorn.Config(
            self.app,
            host=self.host,
            port=self.port,
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=3,
        )
        server = uvicorn.Server(config)
        self._server = server
        # uvicorn only captures signals on the main thread, which stays dagfleet up's.
        self._thread = threading.Thread(
            target=lambda: asyncio.run(server.serve()), name="dagfleet-api", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not self._thread.is_alive():
                raise RuntimeError(f"the dagfleet API could not listen on {self.url}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the dagfleet API did not start on {self.url} in {timeout}s")
            time.sleep(0.02)
        if self.port == 0:
            sockets = [s for srv in server.servers for s in (srv.sockets or [])]
            if sockets:
                self.port = int(sockets[0].getsockname()[1])

    def stop(self) -> None:
        ctx: ApiContext | None = getattr(self.app.state, "ctx", None)
        if ctx is not None:
            ctx.stopping.set()  # ends log followers so shutdown does not wait on them
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(10)
            if self._thread.is_alive():
                assert self._server is not None
                self._server.force_exit = True
                self._thread.join(5)


def serve(
    settings: ApiSettings, controller: Controller, ready: Callable[[], bool] | None = None
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
    server = ApiServer(create_app(settings, controller, ready), settings.host, settings.port)
    server.start()
    return server


def start_api(
    fleet_dir: Path, host: str, port: int, controller: Controller, ready: Callable[[], bool]
) -> ApiServer:
    """What `dagfleet up` calls: settings from its flags and the environment.

    `ready` reports whether the Dagster webserver answers (readyz).
    """
    settings = ApiSettings.from_env(fleet_dir, host=host, port=port)
    return serve(settings, controller, ready)
