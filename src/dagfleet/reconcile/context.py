"""What every location's loop shares: layout, fleet, mirrors, env builder, callbacks."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from dagfleet.envs.builder import EnvBuilder, PythonEnv
from dagfleet.gitops.git import Mirror
from dagfleet.layout import Layout
from dagfleet.runtime import codeserver
from dagfleet.runtime.codeserver import Server
from dagfleet.runtime.processes import PidRegistry
from dagfleet.runtime.spare import SparePool
from dagfleet.spec import CodeTarget, Fleet
from dagfleet.status import StatusStore


class MirrorPool:
    """One mirror per repo; concurrent syncs of one repo share a single fetch."""

    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        self._locks: dict[str, threading.Lock] = {}
        self._fetched_at: dict[str, float] = {}
        self._guard = threading.Lock()

    def fetch(self, repo: str, url: str, since: float) -> Mirror:
        """Fetch unless a fetch that started after `since` already completed."""
        with self._guard:
            lock = self._locks.setdefault(repo, threading.Lock())
        with lock:
            mirror = Mirror(self.layout.mirror(repo), url)
            if self._fetched_at.get(repo, 0.0) > since and mirror.path.exists():
                return mirror
            started = time.monotonic()
            if not mirror.ensure():
                mirror.fetch()
            self._fetched_at[repo] = started
            return mirror

    def local(self, repo: str, url: str) -> Mirror:
        return Mirror(self.layout.mirror(repo), url)


@dataclass
class RuntimeContext:
    layout: Layout
    fleet_ref: list[Fleet]
    builder: EnvBuilder
    mirrors: MirrorPool
    store: StatusStore
    pids: PidRegistry
    on_published: Callable[[str], None] = lambda _location: None
    spares: SparePool | None = None
    install_slots: threading.Semaphore = field(default_factory=lambda: threading.Semaphore(2))
    # Every server started and not yet stopped: live, loading, erroring and retiring.
    _servers: dict[int, Server] = field(default_factory=dict)
    _servers_lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def fleet(self) -> Fleet:
        return self.fleet_ref[0]

    def start_server(
        self,
        location: str,
        sha: str,
        checkout: Path,
        env: PythonEnv,
        target: CodeTarget,
        environ: dict[str, str],
        debug_port: int | None,
    ) -> Server:
        """A new code server for `location`, tracked for cleanup; not yet loaded or live."""
        server = codeserver.start(
            location=location,
            sha=sha,
            checkout=checkout,
            env=env,
            target=target,
            run_dir=self.layout.run,
            environ=environ,
            log=self.layout.log(location),
            debug_port=debug_port,
            spares=self.spares,
        )
        self.pids.add(server.child.pid)
        with self._servers_lock:
            self._servers[server.child.pid] = server
        return server

    def forget(self, server: Server) -> None:
        """`server` has been stopped by its owner: no longer dagfleet's to clean up."""
        with self._servers_lock:
            self._servers.pop(server.child.pid, None)
        self.pids.discard(server.child.pid)

    def discard(self, server: Server, grace: float) -> None:
        """Stop `server` (SIGTERM, then SIGKILL of its group after `grace`), remove its
        private socket and stop tracking it."""
        server.child.stop(grace)
        with contextlib.suppress(FileNotFoundError):
            server.socket.unlink()
        self.forget(server)

    def stop_servers(self, grace: float) -> None:
        """Stop every server still running, whoever owns it (used on shutdown)."""
        with self._servers_lock:
            servers = list(self._servers.values())
        threads = [threading.Thread(target=self.discard, args=(s, grace)) for s in servers]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
