"""The central Dagster instance: dagster-webserver and dagster-daemon as supervised children."""

from __future__ import annotations

import logging
import socket
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from dagfleet.runtime.backoff import Backoff
from dagfleet.runtime.processes import Child, PidRegistry, spawn

log = logging.getLogger(__name__)


def free_loopback_port() -> int:
    """A port free on 127.0.0.1 now (the kernel's pick), for a child told its port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def webserver_args(host: str, port: int, workspace: Path) -> list[str]:
    """`dagster-webserver`, its code-server watch paced (runtime.paced)."""
    return [
        *(sys.executable, "-m", "dagfleet.runtime.paced"),
        "dagster_webserver",
        "-h",
        host,
        "-p",
        str(port),
        "-w",
        str(workspace),
    ]


def daemon_args(workspace: Path) -> list[str]:
    """`dagster-daemon run`, its code-server watch paced (runtime.paced)."""
    return [
        sys.executable,
        "-m",
        "dagfleet.runtime.paced",
        "dagster-daemon",
        "run",
        "-w",
        str(workspace),
    ]


class Supervised:
    """A child restarted whenever it dies, paced by `Backoff`."""

    def __init__(
        self,
        name: str,
        make_args: Callable[[], list[str]],
        cwd: Path,
        env: dict[str, str],
        log_path: Path,
        pids: PidRegistry,
    ) -> None:
        self.name = name
        self.make_args = make_args
        self.cwd = cwd
        self.env = env
        self.log_path = log_path
        self.pids = pids
        self.child: Child | None = None
        self.restarts = 0
        self._started = 0.0
        self._backoff = Backoff()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name=f"supervise-{name}", daemon=True)

    def start(self) -> None:
        self._spawn()
        self._thread.start()

    def _spawn(self) -> None:
        self.child = spawn(
            self.name, self.make_args(), cwd=self.cwd, env=self.env, log=self.log_path
        )
        self.pids.add(self.child.pid)
        self._started = time.monotonic()

    def _watch(self) -> None:
        while not self._stop.wait(0.5):
            child = self.child
            if child is None:
                continue
            if child.alive():
                self._backoff.running(self._started, time.monotonic())
                continue
            delay = self._backoff.wait(time.monotonic())
            log.warning(
                "%s exited with %s; restarting in %.0fs", self.name, child.proc.returncode, delay
            )
            self.pids.discard(child.pid)
            if self._stop.wait(delay):
                return
            self._backoff.restarted(time.monotonic())
            self.restarts += 1
            self._spawn()

    def stop(self, grace: float = 10.0) -> None:
        self._stop.set()
        if self.child is not None:
            self.child.stop(grace)
            self.pids.discard(self.child.pid)


def wait_http(url: str, timeout: float, alive: Callable[[], bool] = lambda: True) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and alive():
        try:
            if httpx.get(url, timeout=2.0).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    return False
