"""`dagfleet up`: the whole local fleet in one supervised process tree.

Start order favours time-to-UI: code servers (one loop per location) and the
webserver start together; every location is reloaded in the webserver as soon
as its code server has loaded. Stop order is the reverse, and every child is
stopped by process group with escalation to SIGKILL.

One `up` per fleet: it holds `.dagfleet/fleet.lock` (status.liveness) from start
to stop, and a clean stop leaves every status saying FleetStopped.
"""

from __future__ import annotations

import contextlib
import logging
import logging.handlers
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from dagfleet.alerts.engine import AlertEngine
from dagfleet.audit.store import open_store as open_audit_store
from dagfleet.audit.writer import AuditWriter
from dagfleet.frontdoor import serve as frontdoor
from dagfleet.frontdoor.identity import Keeper
from dagfleet.frontdoor.tokens import write_local_token
from dagfleet.history.recorder import HistoryRecorder
from dagfleet.history.store import open_store
from dagfleet.layout import Layout
from dagfleet.reconcile.context import MirrorPool, ReconcileContext
from dagfleet.reconcile.manager import Reconciler
from dagfleet.runtime import instance
from dagfleet.runtime.central import (
    Supervised,
    daemon_args,
    free_loopback_port,
    wait_http,
    webserver_args,
)
from dagfleet.runtime.graphql import DagsterWebserver
from dagfleet.runtime.processes import PidRegistry
from dagfleet.runtime.spare import SparePool
from dagfleet.runtime.warm import WarmPool
from dagfleet.service.identity import fleet_id
from dagfleet.spec import LocationSpec, load_fleet
from dagfleet.status import StatusStore
from dagfleet.status.conditions import now
from dagfleet.status.liveness import FleetLock, as_started, as_stopped
from dagfleet.storage import compute_logs_config, write_prefixes
from dagfleet.uvthread import ThreadedServer
from dagfleet.venvs.builder import EnvBuilder
from dagfleet.watch import InstanceWatcher, resolver

log = logging.getLogger(__name__)
LOG_BYTES, LOG_BACKUPS = 10 * 1024 * 1024, 3


def file_log(path: Path) -> logging.Handler:
    """`logs/dagfleet.log`: dagfleet's INFO and up, everyone's warnings, rotated by size.

    The console keeps the level `-v` chose: handlers without a level get the root's
    before the root is opened up to INFO for this file.
    """
    root = logging.getLogger()
    for handler in root.handlers:
        if handler.level == logging.NOTSET:
            handler.setLevel(root.level)
    handler = logging.handlers.RotatingFileHandler(
        path, maxBytes=LOG_BYTES, backupCount=LOG_BACKUPS, encoding="utf-8"
    )
    handler.setLevel(logging.INFO)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(lambda r: r.levelno >= logging.WARNING or r.name.startswith("dagfleet"))
    root.addHandler(handler)
    if root.level == logging.NOTSET or root.level > logging.INFO:
        root.setLevel(logging.INFO)
    return handler


@dataclass(frozen=True)
class Settings:
    """Built once from flags and environment at start-up, then passed down."""

    fleet_dir: Path
    webserver_host: str | None = None
    webserver_port: int | None = None
    api_host: str | None = None
    api_port: int | None = None
    daemon: bool = True
    api: bool = True


class FleetApp:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.fleet = load_fleet(settings.fleet_dir)
        self.layout = Layout.for_fleet(Path(self.fleet.root))
        self.pids = PidRegistry(self.layout.root / "pids", marker=str(self.layout.root))
        ws = self.fleet.spec.instance.webserver
        self.web_host = settings.webserver_host or ws.host
        self.web_port = settings.webserver_port if settings.webserver_port is not None else ws.port
        api = self.fleet.spec.instance.api
        self.api_host = settings.api_host or api.host
        self.api_port = settings.api_port if settings.api_port is not None else api.port
        self.web_url = f"http://{self.web_host}:{self.web_port}"
        # The Dagster webserver listens on loopback only; the front door (dagfleet.frontdoor)
        # serves the UI on the configured address and is the only way in.
        self.upstream_port = free_loopback_port()
        self.upstream_url = f"http://127.0.0.1:{self.upstream_port}"
        self.front_door: ThreadedServer | None = None
        self.keeper: Keeper | None = None
        self.local_token: str | None = None
        self.webserver: Supervised | None = None
        self.daemon: Supervised | None = None
        self.api_server: object | None = None
        self.reconciler: Reconciler | None = None
        self.watcher: InstanceWatcher | None = None
        self._web_ready = threading.Event()
        self._gql = DagsterWebserver(self.upstream_url)
        self.spares = SparePool(self.pids, self.layout.logs, str(self.layout.root))
        # Code servers forked from a zygote per env (dagfleet.runtime.warm); read at start.
        self.warm = (
            WarmPool(self.pids, self.layout.logs, str(self.layout.root))
            if self.fleet.spec.instance.warm_forks
            else None
        )
        self._stopping = threading.Event()
        self._start_lock = threading.Lock()
        self._workspace = self.layout.dagster_home / "workspace.yaml"
        self._env: dict[str, str] = {}
        self._lock: FleetLock | None = None
        self.alerts: AlertEngine | None = None
        self.history: HistoryRecorder | None = None
        # The audit log (dagfleet.audit): the API's service and the front door record into it.
        self.audit: AuditWriter | None = None
        self._log_handler: logging.Handler | None = None

    # ---- callbacks from the reconcile loops -------------------------------------------
    def _on_published(self, location: str) -> None:
        if not self._web_ready.is_set():
            return
        try:
            self._gql.reload_location(location)
        except Exception as exc:  # the webserver restarting is not the location's problem
            log.warning("reloading %s in the webserver failed: %s", location, exc)

    def _on_workspace_changed(self, locations: list[LocationSpec]) -> None:
        if self.reconciler is not None:
            write_prefixes(self.reconciler.ctx.fleet)  # where step logs of each repo go
        entries = [(loc.name, self.layout.socket(loc.name)) for loc in locations]
        changed = instance.write_workspace(
            self.layout.dagster_home, instance.workspace_yaml(entries)
        )
        if changed and self._web_ready.is_set():
            try:
                self._gql.reload_workspace()
            except Exception as exc:
                log.warning("reloading the workspace failed: %s", exc)

    # ---- lifecycle --------------------------------------------------------------------
    def start(self) -> None:
        # First: a second `up` must not touch (or kill) the running fleet's processes.
        self._lock = FleetLock.acquire(self.layout, Path(self.fleet.root))
        killed = self.pids.kill_orphans()
        if killed:
            log.warning("stopped %d processes left by a previous dagfleet", len(killed))
        # If this process dies without stopping its children (kill -9), they go too.
        self.pids.guard(self.layout.logs / "reaper.log")
        home = self.layout.dagster_home
        foreign = instance.foreign_dagster_home(os.environ, home)
        if foreign:
            log.warning("%s", foreign)
        config = instance.dagster_yaml(
            self.fleet, home, os.environ, compute_logs_config(self.fleet)
        )
        instance.write_instance(home, config)
        instance.prepare_storage(home)
        self.layout.logs.mkdir(parents=True, exist_ok=True)
        self._log_handler = file_log(self.layout.logs / "dagfleet.log")
        log.info("starting fleet %s (%d locations)", self.fleet.name, len(self.fleet.locations()))
        store = StatusStore(self.layout.status)
        for status in store.all():  # the last stop's FleetStopped: starting again now
            store.write(as_started(status))
        ctx = ReconcileContext(
            layout=self.layout,
            fleet_ref=[self.fleet],
            builder=EnvBuilder(
                self.layout.venvs,
                extras=instance.instance_packages(self.fleet, os.environ),
                state_marker=str(self.layout.root),
            ),
            mirrors=MirrorPool(self.layout),
            store=store,
            pids=self.pids,
            on_published=self._on_published,
            spares=None if self.warm is not None else self.spares,
            warm=self.warm,
        )
        history = open_store(self.fleet.spec, self.layout, os.environ)
        self.history = HistoryRecorder(history, fleet_id(self.layout)).start()
        ctx.events.subscribe(self.history)
        log.info("publish history in %s", history.where())
        audit = open_audit_store(self.fleet.spec, self.layout, os.environ)
        self.audit = AuditWriter(audit, fleet_id(self.layout)).start()
        # Alert policies (docs/alerts.md): their own threads, fed by the loops' events.
        self.alerts = AlertEngine(lambda: ctx.fleet, self.layout, self.web_url)
        self.alerts.attach(ctx.events)
        self.alerts.start()
        self.reconciler = Reconciler(ctx, on_workspace_changed=self._on_workspace_changed)
        # First, so that an unsafe bind (no identity, not loopback) stops us early.
        self._start_front_door(ctx)
        if self.settings.api:
            self._start_api()
        self.reconciler.start()
        env = instance.instance_env(home)
        env["DAGFLEET_STATE"] = str(self.layout.root)
        workspace = home / "workspace.yaml"
        self.webserver = Supervised(
            "dagster-webserver",
            lambda: webserver_args("127.0.0.1", self.upstream_port, workspace),
            home,
            env,
            self.layout.logs / "webserver.log",
            self.pids,
        )
        self.webserver.start()
        self._workspace = workspace
        self._env = env
        threading.Thread(target=self._await_webserver, daemon=True).start()
        threading.Thread(target=self._after_startup, daemon=True).start()

    def _after_startup(self) -> None:
        """The daemon and warm spares wait until the UI has its locations (or 60 s).

        On 2 cores every Python process that imports Dagster at the same time
        slows the others; neither the daemon nor the spares are needed to show
        the locations, so they start second.
        """
        self.wait_ready(60)
        with self._start_lock:
            if self._stopping.is_set():
                return
            if self.settings.daemon:
                workspace = self._workspace
                self.daemon = Supervised(
                    "dagster-daemon",
                    lambda: daemon_args(workspace),
                    self.layout.dagster_home,
                    self._env,
                    self.layout.logs / "daemon.log",
                    self.pids,
                )
                self.daemon.start()
        self.spares.release()

    def _start_api(self) -> None:
        try:
            from dagfleet.api.server import start_api
        except ImportError:
            return
        assert self.reconciler is not None
        self.api_server = start_api(
            Path(self.settings.fleet_dir),
            self.api_host,
            self.api_port,
            self.reconciler,
            self._web_ready.is_set,
            keeper=self.keeper,
            audit=self.audit,
        )

    def _start_front_door(self, ctx: ReconcileContext) -> None:
        self.local_token = write_local_token(self.layout.root)
        door = frontdoor.build(
            frontdoor.DoorSettings(
                fleet_root=Path(self.fleet.root),
                state_dir=self.layout.root,
                host=self.web_host,
                port=self.web_port,
                upstream=self.upstream_url,
            ),
            lambda: ctx.fleet,
            local_token=self.local_token,
            audit=self.audit,
        )
        self.keeper = door.keeper  # the API shares it: one set of users, sessions, tokens
        self.front_door = frontdoor.start(door, self.web_host, self.web_port)

    def sign_in_hint(self) -> str:
        """How to get in, for the line `dagfleet up` prints."""
        if self.keeper is None or self.keeper.open_door():
            return (
                "no sign-in: anyone on this machine is admin (`dagfleet user add NAME` "
                "to require one)"
            )
        ways = []
        if self.keeper.identities.user_hashes():
            ways.append(f"a user from {self.keeper.identities.users.path}")
        if self.keeper.identities.oidc_enabled:
            ways.append("single sign-on")
        if self.keeper.identities.tokens:
            ways.append("an API token")
        return "sign in with " + " or ".join(ways)

    def _await_webserver(self) -> None:
        web = self.webserver
        if web is None:
            return
        if wait_http(f"{self.upstream_url}/server_info", 300, lambda: web.child is not None):
            self._web_ready.set()
            self._start_watcher()
            # Locations that went live before the webserver answered: load them now.
            try:
                self._gql.reload_workspace()
            except Exception as exc:
                log.warning("initial workspace reload failed: %s", exc)

    def _start_watcher(self) -> None:
        """Runs, ticks and the daemon's heartbeats as events (dagfleet.watch)."""
        with self._start_lock:
            if self._stopping.is_set() or self.reconciler is None:
                return
            ctx = self.reconciler.ctx
            self.watcher = InstanceWatcher(
                self.layout.dagster_home,
                ctx.events,
                resolver(lambda: ctx.fleet),
                daemon_expected=lambda: self.daemon is not None,
            )
            self.watcher.start()

    def wait_ready(self, timeout: float) -> bool:
        """True once the webserver answers and every location has loaded there."""
        deadline = time.monotonic() + timeout
        if not self._web_ready.wait(timeout):
            return False
        assert self.reconciler is not None
        while time.monotonic() < deadline:
            wanted = set(self.reconciler.loops)
            try:
                if wanted <= self._gql.loaded_locations():
                    return True
            except Exception:
                pass
            time.sleep(0.25)
        return False

    def stop(self) -> None:
        if self._lock is None:
            return  # never started (or refused: another `up` runs this fleet)
        with self._start_lock:
            self._stopping.set()
        if self.watcher is not None:
            self.watcher.stop()
        stop_api = getattr(self.api_server, "stop", None)
        if callable(stop_api):
            stop_api()
        if self.front_door is not None:
            self.front_door.stop()
            self.front_door = None
        threads = []
        if self.reconciler is not None:
            threads.append(threading.Thread(target=self.reconciler.stop))
        for proc in (self.webserver, self.daemon):
            if proc is not None:
                threads.append(threading.Thread(target=proc.stop))
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if self.alerts is not None:  # the loops have stopped: deliver what is queued, briefly
            self.alerts.stop()
            self.alerts = None
        self.spares.close()
        if self.warm is not None:
            self.warm.close()
        self._gql.close()
        # Last line of defence: anything still registered (a server a thread started
        # while we were stopping) goes the way a kill -9's orphans go at the next start.
        leftovers = self.pids.kill_orphans()
        if leftovers:
            log.warning("stopped %d processes that outlived their owners", len(leftovers))
        self.pids.disarm()  # a clean stop: the reaper has nothing to do
        with contextlib.suppress(OSError):
            self.layout.run.rmdir()  # only when empty: a live handoff may still own a socket
        self._write_stopped()
        if self.history is not None:
            self.history.close()  # the loops have stopped: every attempt is queued
            self.history = None
        if self.audit is not None:
            self.audit.close()  # the API and the front door have stopped: every entry is queued
            self.audit = None
        log.info("fleet %s stopped", self.fleet.name)
        if self._log_handler is not None:
            logging.getLogger().removeHandler(self._log_handler)
            self._log_handler.close()
            self._log_handler = None
        self._lock.release()
        self._lock = None

    def _write_stopped(self) -> None:
        """Every location's status says the fleet stopped, keeping what it last served."""
        store = StatusStore(self.layout.status)
        at = now()
        for status in store.all():
            try:
                store.write(as_stopped(status, at))
            except OSError as exc:  # one unwritable file must not keep the others stale
                log.warning("%s: writing the stopped status failed: %s", status.location, exc)
