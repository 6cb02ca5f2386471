"""Playground locations: `playground-<env>` serves every *.py file in a writable directory.

Seed 000's playground is a directory in the pod that developers `kubectl cp`
into and then click Reload. Here the loop watches the directory itself and
hands over to a new code server whenever its files change, so a pushed file
appears without a click. Unlike repo locations, a playground that fails to
load is still published: its users want to see their error.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import logging
import shutil
import sys
import threading
import time
from pathlib import Path

from dagfleet.fsutil import atomic_write
from dagfleet.playground_loader import LOADER
from dagfleet.reconcile.context import ReconcileContext
from dagfleet.runtime import codeserver
from dagfleet.runtime.codeserver import LoadCancelled, LoadFailed, Server
from dagfleet.runtime.environ import location_environ
from dagfleet.spec import CodeTarget, LocationSpec
from dagfleet.status import LocationStatus, Reason
from dagfleet.status.conditions import ConditionType, now
from dagfleet.venvs.builder import InstallError, PythonEnv

log = logging.getLogger(__name__)
WATCH_INTERVAL = 0.25
STOP_JOIN = 15.0
STOP_GRACE = 10.0
TARGET = CodeTarget(package_name="playground")


def files_digest(directory: Path) -> str:
    """A content hash of the playground's user files: the 'commit' it serves."""
    digest = hashlib.sha256()
    for path in sorted(directory.glob("*.py")):
        if path.name == "__init__.py":
            continue
        with contextlib.suppress(OSError):
            digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:40]


class PlaygroundLoop:
    def __init__(self, ctx: ReconcileContext, spec: LocationSpec, debug_port: int | None) -> None:
        self.ctx = ctx
        self.spec = spec
        self.debug_port = debug_port
        self.directory = ctx.layout.playground(spec.env)
        self.live: Server | None = None
        self.status = LocationStatus(location=spec.name, repo="playground", env=spec.env)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._generation = 0
        self.thread = threading.Thread(target=self._run, name=f"play-{spec.name}", daemon=True)

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        atomic_write(self.directory / "__init__.py", LOADER)
        self.thread.start()

    def poke(self) -> None:
        self._wake.set()

    def update(self, spec: LocationSpec, republish: bool) -> None:
        self.spec = spec
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self.thread.join(timeout=STOP_JOIN)
        if self.live is not None:
            self.ctx.discard(self.live, STOP_GRACE)
        with contextlib.suppress(FileNotFoundError):
            self.ctx.layout.socket(self.spec.name).unlink()

    def _run(self) -> None:
        served: str | None = None
        while not self._stop.is_set():
            digest = files_digest(self.directory)
            dead = self.live is not None and not self.live.alive()
            if digest != served or dead:
                try:
                    self._serve(digest)
                    served = digest
                except LoadCancelled:
                    return
                except Exception:
                    log.exception("%s: could not start the playground server", self.spec.name)
                    time.sleep(2)
            self._wake.wait(WATCH_INTERVAL)
            self._wake.clear()

    def _serve(self, digest: str) -> None:
        started = time.monotonic()
        # Python trusts a cached .pyc whose source has the same size and the same mtime
        # in whole seconds: a file saved twice within a second, same length (`push
        # --watch`), would load its older version. Files here change in place; the
        # cache goes before each server.
        shutil.rmtree(self.directory / "__pycache__", ignore_errors=True)
        env = PythonEnv(Path(sys.prefix), "dagfleet")
        environ = location_environ(
            self.ctx.fleet,
            self.spec,
            digest,
            self.ctx.layout.dagster_home,
            str(self.ctx.layout.root),
        )
        self._generation += 1
        debug = None if self.debug_port is None else self.debug_port + self._generation % 2
        if debug is not None and importlib.util.find_spec("debugpy") is None:
            # Playgrounds run in dagfleet's own environment, which need not have debugpy:
            # it comes from the same per-Python install the repo locations use.
            try:
                tool = self.ctx.builder.tool("debugpy", env.python_version())
                environ["PYTHONPATH"] = str(tool)
            except InstallError:
                log.warning(
                    "%s: debugpy could not be installed, serving without it", self.spec.name
                )
                debug = None
        server = self.ctx.start_server(
            self.spec.name, digest, self.directory.parent, env, TARGET, environ, debug
        )
        error: str | None = None
        try:
            codeserver.wait_loaded(server, self.ctx.layout.log(self.spec.name), cancel=self._stop)
        except LoadCancelled:
            self.ctx.discard(server, 2.0)
            raise
        except LoadFailed as exc:
            error = exc.detail
        if not server.alive():
            self.ctx.discard(server, 0.0)
            self._record(error or "the playground server exited", digest, None)
            raise RuntimeError(error or "playground server exited")
        codeserver.take_over(server, self.ctx.layout.socket(self.spec.name))
        if self.ctx.spares is not None and debug is None:
            self.ctx.spares.replenish(env)
        old, self.live = self.live, server
        self.ctx.on_published(self.spec.name)
        self._record(error, digest, server, time.monotonic() - started)
        if old is not None:
            threading.Thread(target=self._retire, args=(old,), daemon=True).start()

    def _retire(self, server: Server) -> None:
        codeserver.retire(server)
        self.ctx.forget(server)

    def _record(
        self, error: str | None, digest: str, server: Server | None, took: float = 0.0
    ) -> None:
        ok = error is None and server is not None
        if ok:
            serving = (Reason.CODE_SERVER_RUNNING, f"serving playground files {digest[:12]}")
        elif server is not None:
            serving = (Reason.DEFINITIONS_INVALID, "the playground files do not load")
        else:
            serving = (Reason.CODE_SERVER_CRASHED, "the playground server exited")
        self.status = self.status.with_condition(
            ConditionType.SERVING, "True" if ok else "False", *serving
        )
        self.status = self.status.with_condition(
            ConditionType.SYNCED,
            "True" if ok else "False",
            Reason.PUBLISHED if ok else Reason.DEFINITIONS_INVALID,
            error or f"serving playground files {digest[:12]}",
        )
        self.status = self.status.model_copy(
            update={
                "commit": digest,
                "last_good_commit": digest if ok else self.status.last_good_commit,
                "address": str(self.ctx.layout.socket(self.spec.name)),
                "pid": server.child.pid if server else None,
                "debug_port": server.debug_port if server else None,
                "last_sync": now(),
                "sync_duration_seconds": round(took, 3),
                "ref": str(self.directory),
            }
        )
        self.ctx.store.write(self.status)
