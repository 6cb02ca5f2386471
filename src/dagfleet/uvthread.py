"""One uvicorn server on its own thread and event loop (the API, the front door).

`dagfleet up` keeps the main thread for signals, so servers run beside it.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import uvicorn


def _run(server: uvicorn.Server) -> None:
    """Serve on uvloop when it is installed (it is, with uvicorn's extras): a proxy
    spends much of its time in the event loop."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(server.serve())
        return
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(server.serve())


class ThreadedServer:
    def __init__(self, app: Any, host: str, port: int, name: str, **config: Any) -> None:
        self.app = app
        self.host = host
        self.port = port
        self.name = name
        self._config = config
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
            **self._config,
        )
        server = uvicorn.Server(config)
        self._server = server
        # uvicorn only captures signals on the main thread, which stays the caller's.
        self._thread = threading.Thread(target=lambda: _run(server), name=self.name, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not self._thread.is_alive():
                raise RuntimeError(f"the {self.name} could not listen on {self.url}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the {self.name} did not start on {self.url} in {timeout}s")
            time.sleep(0.02)
        if self.port == 0:
            sockets = [s for srv in server.servers for s in (srv.sockets or [])]
            if sockets:
                self.port = int(sockets[0].getsockname()[1])

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(10)
            if self._thread.is_alive():
                assert self._server is not None
                self._server.force_exit = True
                self._thread.join(5)
