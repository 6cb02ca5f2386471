"""The reconciler: a loop per location, the registry watcher, the live Controller.

It reloads the fleet files when they change (the REST API and CLI write them),
starts loops for new locations, stops loops of removed or suspended repos, and
keeps workspace.yaml listing exactly the fleet's locations.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

from dagfleet.control import ControlError, PromoteOutcome, SyncOutcome
from dagfleet.events import Event, Kind
from dagfleet.gitops.git import Mirror
from dagfleet.gitops.urls import same_url
from dagfleet.reconcile.context import ReconcileContext
from dagfleet.reconcile.location import LocationLoop
from dagfleet.reconcile.playground import PlaygroundLoop
from dagfleet.reconcile.promote import Serving, promote
from dagfleet.runtime.debugports import DebugPorts
from dagfleet.spec import Fleet, LocationSpec, RepoSpec, SpecError, load_fleet
from dagfleet.status import LocationStatus, Reason
from dagfleet.status.conditions import ConditionType

log = logging.getLogger(__name__)
WATCH_INTERVAL = 0.5
SYNC_WAIT = 900.0
FETCH_EPSILON = 1e-6  # a request "since just before" a fetch takes that fetch


def _signature(root: Path) -> tuple[tuple[str, int, int], ...]:
    files = [root / "fleet.yaml", *sorted((root / "repos").glob("*.y*ml"))]
    out = []
    for f in files:
        with contextlib.suppress(FileNotFoundError):
            st = f.stat()
            out.append((f.name, st.st_mtime_ns, st.st_size))
    return tuple(out)


class Reconciler:
    def __init__(
        self,
        ctx: ReconcileContext,
        on_workspace_changed: Callable[[list[LocationSpec]], None],
    ) -> None:
        self.ctx = ctx
        self.on_workspace_changed = on_workspace_changed
        self.loops: dict[str, LocationLoop | PlaygroundLoop] = {}
        self._lock = threading.RLock()
        self._changed = threading.Event()
        self._refresh_lock = threading.Lock()
        self._stop = threading.Event()
        self._sig = _signature(Path(ctx.fleet.root))
        self._watcher = threading.Thread(target=self._watch, name="registry-watch", daemon=True)
        self.last_error: str | None = None
        self.debug_ports = DebugPorts()
        ctx.mirrors.on_refs_changed(self._refs_changed)

    # ---- lifecycle --------------------------------------------------------------------
    def start(self) -> None:
        self._apply(self.ctx.fleet, initial=True)
        self._watcher.start()

    def stop(self) -> None:
        """Stop every loop, abandoning installs and loads in progress, then every code
        server still running (retiring ones included): nothing outlives dagfleet."""
        self._stop.set()
        self._changed.set()
        self.ctx.builder.cancel()
        with self._lock:
            loops = list(self.loops.values())
        threads = [threading.Thread(target=lp.stop) for lp in loops]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.ctx.stop_servers(grace=5.0)

    def debug_port_for(self, fleet: Fleet, spec: LocationSpec) -> int | None:
        if not fleet.environment(spec.env).debug:
            return None
        return self.debug_ports.pair_for(spec.name, fleet.spec.instance.debug_port_base)

    def _apply(self, fleet: Fleet, initial: bool = False) -> None:
        old_fleet = self.ctx.fleet
        self.ctx.fleet_ref[0] = fleet
        wanted = {loc.name: loc for loc in fleet.locations()}
        with self._lock:
            for name in list(self.loops):
                if name not in wanted:
                    gone = self.loops.pop(name)
                    # Safe before its servers stop: a pair still listened on is never
                    # handed out again (DebugPorts checks), so nothing can collide.
                    self.debug_ports.release(name)
                    threading.Thread(target=self._remove, args=(gone, fleet), daemon=True).start()
            for name, spec in sorted(wanted.items()):
                loop = self.loops.get(name)
                if loop is None:
                    port = self.debug_port_for(fleet, spec)
                    loop = (
                        PlaygroundLoop(self.ctx, spec, port)
                        if spec.playground
                        else LocationLoop(self.ctx, spec, port)
                    )
                    self.loops[name] = loop
                    loop.start()
                elif spec.playground:
                    loop.update(spec, republish=False)
                elif not initial:
                    old_repo = old_fleet.repos.get(spec.repo)
                    new_repo = fleet.repos[spec.repo]
                    env_changed = old_fleet.environment(spec.env) != fleet.environment(spec.env)
                    republish = (
                        old_repo is None
                        or _runtime_fields(old_repo) != _runtime_fields(new_repo)
                        or env_changed
                    )
                    if republish or loop.spec != spec:
                        loop.update(spec, republish=republish)
            self._mark_suspended(fleet)
        self.on_workspace_changed(list(wanted.values()))

    def _mark_suspended(self, fleet: Fleet) -> None:
        for repo in fleet.repos.values():
            if not repo.suspend:
                continue
            for env in fleet.spec.environments:
                for name in repo.location_names(env.name):
                    status = self.ctx.store.read(name) or LocationStatus(
                        location=name, repo=repo.name, env=env.name
                    )
                    status = status.with_condition(
                        ConditionType.SUSPENDED,
                        "True",
                        Reason.SUSPENDED,
                        "suspend: true in repo file",
                    )
                    self.ctx.store.write(status.model_copy(update={"pid": None}))

    def _remove(self, loop: LocationLoop | PlaygroundLoop, fleet: Fleet) -> None:
        loop.stop()
        repo = fleet.repos.get(loop.spec.repo)
        if repo is not None and repo.suspend:
            return  # keep checkouts and status: resuming starts where it was
        self.ctx.store.remove(loop.spec.name)
        shutil.rmtree(self.ctx.layout.checkouts(loop.spec.name), ignore_errors=True)

    def _watch(self) -> None:
        while not self._stop.is_set():
            self._changed.wait(WATCH_INTERVAL)
            self._changed.clear()
            if self._stop.is_set():
                return
            self.refresh()

    def refresh(self) -> None:
        """Apply the fleet files now if they changed since they were last applied.

        The watcher calls this twice a second; a caller that just wrote a repo file
        and needs its locations (sync right after add) calls it directly.
        """
        with self._refresh_lock:
            if self._stop.is_set():
                return
            root = Path(self.ctx.fleet.root)
            sig = _signature(root)
            if sig == self._sig:
                return
            self._sig = sig
            try:
                fleet = load_fleet(root)
            except SpecError as err:
                self.last_error = str(err)
                log.error("fleet files invalid, keeping the running fleet:\n%s", err)
                return
            self.last_error = None
            self._apply(fleet)

    # ---- Controller -------------------------------------------------------------------
    def fleet(self) -> Fleet:
        return self.ctx.fleet

    def registry_changed(self) -> None:
        self._changed.set()

    def statuses(self) -> list[LocationStatus]:
        with self._lock:
            live = {name: loop.status for name, loop in self.loops.items()}
        out = []
        for loc in self.ctx.fleet.locations():
            if loc.name in live:
                out.append(live[loc.name])
        for status in self.ctx.store.all():
            if status.location not in live and status.repo in self.ctx.fleet.repos:
                out.append(status)
        return out

    def _git_loops(self) -> list[LocationLoop]:
        with self._lock:
            return [lp for lp in self.loops.values() if isinstance(lp, LocationLoop)]

    def playground_changed(self, env: str) -> None:
        """Files in `env`'s playground changed: hand over to a new server now."""
        with self._lock:
            loop = self.loops.get(f"playground-{env}")
        if isinstance(loop, PlaygroundLoop):
            loop.poke()

    def _matching(self, repo: str | None, env: str | None) -> list[LocationLoop]:
        loops = self._git_loops()
        if repo is not None and repo not in self.ctx.fleet.repos:
            raise ControlError(f"unknown repo {repo!r}", 404)
        return [
            lp
            for lp in loops
            if (repo is None or lp.spec.repo == repo) and (env is None or lp.spec.env == env)
        ]

    def sync(self, repo: str | None, env: str | None, wait: bool) -> list[SyncOutcome]:
        self.refresh()  # a repo added a moment ago has its loops before we look for them
        loops = self._matching(repo, env)
        requests = [(lp, lp.request(force=True)) for lp in loops]
        if not wait:
            return []
        deadline = time.monotonic() + SYNC_WAIT
        out = []
        for lp, req in requests:
            req.done.wait(max(0.0, deadline - time.monotonic()))
            out.append(
                req.outcome
                or SyncOutcome(lp.spec.name, False, lp.status.commit, error="still syncing")
            )
        return out

    def _refs_changed(self, repo: str, fetched: float) -> None:
        """A fetch moved `repo`'s branches or tags: its locations look now, without a fetch
        of their own (the one that moved them is already in the mirror)."""
        for lp in self._git_loops():
            if lp.spec.repo == repo:
                lp.request(force=False, fetched_since=fetched - FETCH_EPSILON)

    def request_sync_for_push(self, git_url: str, branch: str) -> list[str]:
        hit = []
        for lp in self._git_loops():
            repo = self.ctx.fleet.repos.get(lp.spec.repo)
            if (
                repo
                and same_url(repo.git_url, git_url)
                and lp.spec.ref == branch
                and not lp.spec.pin
            ):
                lp.request(force=False)
                hit.append(lp.spec.name)
        return hit

    def promote(self, repo: str, source: str, target: str, merge: bool) -> PromoteOutcome:
        fleet = self.ctx.fleet
        spec = fleet.repos.get(repo)
        names = spec.location_names(source) if spec is not None else []
        with self._lock:
            loops = {name: self.loops.get(name) for name in names}
        serving = {}
        for name, loop in loops.items():
            if loop is None:
                continue
            # Read `live` once: the loop's thread swaps it (a crashed server is replaced by
            # None, then by its restart), and a second read could find None.
            live = loop.live
            serving[name] = Serving(live.sha if live else None, loop.status.ready)

        def fetch(r: RepoSpec) -> Mirror:
            return self.ctx.mirrors.fetch(r.name, r.git_url, float("inf"), r.credentials)

        outcome = promote(fleet, serving, fetch, repo, source, target, merge)
        how = "merged into" if outcome.merged else "fast-forwarded"
        for name in spec.location_names(target) if spec is not None else []:
            self.ctx.events.publish(
                Event(
                    Kind.PROMOTED,
                    name,
                    repo,
                    target,
                    outcome.commit,
                    f"{outcome.target_branch} {how} {outcome.commit[:12]} (live in {source})",
                    data={"source": source, "branch": outcome.target_branch},
                )
            )
        self.sync(repo, target, wait=False)
        return outcome


def _runtime_fields(repo: RepoSpec) -> object:
    """The parts of a repo spec that change what a running code server is."""
    return repo.model_dump(
        exclude={"poll_interval", "resources", "suspend", "branch", "branches", "pins"}
    )
