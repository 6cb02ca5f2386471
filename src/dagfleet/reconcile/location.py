"""One location's loop: fetch -> checkout -> env -> load check -> publish -> serve.

Level-triggered: each pass compares what the branch names with what is live
and does only the missing steps, so a pass can be killed at any point and the
next one converges. Last good wins: a commit that fails any step is never
published; the previous server keeps serving and a condition names the commit.

The steps up to the load check are `reconcile.pipeline`'s. A failure the
pipeline calls transient (the remote, the index, a timeout) is retried on the
same commit, paced by `Backoff`; any other failure stalls the commit until a new
one arrives or a sync is forced.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from dataclasses import dataclass, field

from dagfleet.control import SyncOutcome
from dagfleet.events import Attempt, Event, Kind, Outcome
from dagfleet.faults import checkpoint
from dagfleet.gitops import checkout
from dagfleet.gitops.git import GitError, Mirror
from dagfleet.reconcile.context import ReconcileContext
from dagfleet.reconcile.pipeline import (
    Candidate,
    Pipeline,
    StepCancelled,
    StepFailed,
    describe,
    lead_with_error,
    timed,
)
from dagfleet.runtime import codeserver, grpc
from dagfleet.runtime.backoff import Backoff
from dagfleet.runtime.codeserver import LoadCancelled, LoadFailed, Server
from dagfleet.spec import LocationSpec
from dagfleet.status import LocationStatus, Reason
from dagfleet.status.conditions import ConditionType, now

log = logging.getLogger(__name__)
MAX_BACKOFF = 60.0
STOP_GRACE = 10.0
STOP_JOIN = 15.0  # a pass notices the stop within this (loads and installs are cancelled)
HEALTH_EVERY = 10.0  # seconds between gRPC health checks of the live server
HEALTH_FAILURES = 3  # consecutive failed checks before a hung server is killed
RETRY_FIRST = 2.0  # seconds before the first retry of a transient failure
RETRY_CAP = 60.0
LAST_SYNC_WRITE_EVERY = 60.0  # seconds: how stale a status file's last_sync may get
Cancelled = (LoadCancelled, StepCancelled)
# What a Progressing condition says during each step of a publish.
STEP_WORDS = {
    "checkout": "checking out",
    "discover": "finding the code location of",
    "install": "installing dependencies (uv) of",
    "build": "running build steps of",
    "environment": "preparing the environment of",
    "load": "loading definitions of",
}


@dataclass
class _Request:
    force: bool
    at: float = field(default_factory=time.monotonic)
    done: threading.Event = field(default_factory=threading.Event)
    outcome: SyncOutcome | None = None


def commit_info(mirror: Mirror | None, sha: str | None) -> tuple[str | None, str | None]:
    """The commit's author and subject line, for history and alerts; (None, None) if unknown."""
    if mirror is None or sha is None:
        return None, None
    try:
        out = mirror.git("log", "-1", "--format=%an%x00%s", sha, timeout=10, check=True)
    except GitError:
        return None, None
    author, _, subject = out.strip().partition("\0")
    return author or None, subject or None


class LocationLoop:
    def __init__(self, ctx: ReconcileContext, spec: LocationSpec, debug_port: int | None) -> None:
        self.ctx = ctx
        self.spec = spec
        self.debug_port = debug_port
        self.live: Server | None = None
        self.error_server: Server | None = None
        self.failed_sha: str | None = None
        self.status = ctx.store.read(spec.name) or LocationStatus(
            location=spec.name, repo=spec.repo, env=spec.env
        )
        self._requests: list[_Request] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._republish = False
        self._restarts = Backoff(cap=MAX_BACKOFF)
        self._retries = Backoff(first=RETRY_FIRST, cap=RETRY_CAP)
        self._retry_at: float | None = None  # a transient failure's retry is due then
        self._retry_sha: str | None = None  # ... for this commit
        self._next_health = 0.0
        self._unhealthy = 0
        self._generation = 0
        self._draining: set[str] = set()  # commits whose retiring servers may still run code
        self._timings: dict[str, float] = {}  # seconds per step of the attempt in progress
        self._written: LocationStatus | None = None  # the file's status, last_sync aside
        self._probe: grpc.HealthProbe | None = None  # the live server's health channel
        self._written_at = 0.0
        self.thread = threading.Thread(target=self._run, name=f"sync-{spec.name}", daemon=True)

    # ---- control from other threads -------------------------------------------------
    def start(self) -> None:
        self.thread.start()

    def request(self, force: bool = False, fetched_since: float | None = None) -> _Request:
        """Ask for a sync pass. It fetches unless a fetch of the repo started after the
        request was made, or after `fetched_since` (a sibling's fetch that moved refs)."""
        req = _Request(force=force) if fetched_since is None else _Request(force, fetched_since)
        with self._lock:
            self._requests.append(req)
        self._wake.set()
        return req

    def update(self, spec: LocationSpec, republish: bool) -> None:
        self.spec = spec
        if republish:
            self._republish = True
        self.request(force=True)

    def stop(self) -> None:
        """Stop the loop and the servers it serves with. A load in progress is abandoned;
        retiring servers keep draining their runs (on shutdown the runtime stops them)."""
        self._stop.set()
        self._wake.set()
        if self.thread.is_alive():
            self.thread.join(timeout=STOP_JOIN)
        for server in (self.live, self.error_server):
            if server is not None:
                self._discard(server, STOP_GRACE)
        with contextlib.suppress(FileNotFoundError):
            self.ctx.layout.socket(self.spec.name).unlink()
        self.live = self.error_server = None
        self._close_probe()

    def _close_probe(self) -> None:
        if self._probe is not None:
            self._probe.close()
            self._probe = None

    # ---- the loop --------------------------------------------------------------------
    def _run(self) -> None:
        try:
            self._resume()
        except Cancelled:
            return
        except Exception:
            log.exception("%s: resume failed", self.spec.name)
        next_poll = 0.0
        while not self._stop.is_set():
            with self._lock:
                pending, self._requests = self._requests, []
            clock = time.monotonic()
            retry_due = self._retry_at is not None and clock >= self._retry_at
            if pending or clock >= next_poll or retry_due:
                force = any(r.force for r in pending)
                # A poll takes any fetch of the repo from the last poll period: the
                # repo's locations in other environments share one fetch per period
                # (the fetch that moves a branch wakes them: `MirrorPool` listeners).
                since = min((r.at for r in pending), default=clock - self.spec.poll_interval)
                try:
                    outcome = self.sync_once(force=force, since=since)
                except Cancelled:
                    for r in pending:
                        r.done.set()
                    return
                except Exception as exc:  # unknown errors are transient: report, retry
                    log.exception("%s: sync failed", self.spec.name)
                    outcome = SyncOutcome(
                        self.spec.name, False, self.status.commit, error=describe(exc)
                    )
                for r in pending:
                    r.outcome = outcome
                    r.done.set()
                next_poll = time.monotonic() + self.spec.poll_interval
            try:
                self._supervise()
            except Cancelled:
                return  # stopping while a crashed server was being restarted
            except Exception:  # a failed restart is retried on a later pass, with backoff
                log.exception("%s: supervising the code server failed", self.spec.name)
            due = next_poll if self._retry_at is None else min(next_poll, self._retry_at)
            self._wake.wait(timeout=max(0.05, min(1.0, due - time.monotonic())))
            self._wake.clear()

    def _save(self, **changes: object) -> None:
        """Update status fields and write the status file (conditions set so far included).

        A poll that found nothing new changes only `last_sync`: the API reads it from
        memory, and the file (for readers without the API) is refreshed at most every
        LAST_SYNC_WRITE_EVERY seconds instead of at every poll of every location."""
        self.status = self.status.model_copy(update=changes)
        clock = time.monotonic()
        unsynced = self.status.model_copy(update={"last_sync": None})
        if clock - self._written_at < LAST_SYNC_WRITE_EVERY and self._written == unsynced:
            return
        self.ctx.store.write(self.status)
        self._written, self._written_at = unsynced, clock

    def _condition(self, type_: str, ok: bool, reason: Reason, message: str = "") -> None:
        """Set one condition in memory; the next `_save` writes it."""
        self.status = self.status.with_condition(type_, "True" if ok else "False", reason, message)

    # ---- one sync ---------------------------------------------------------------------
    def sync_once(self, force: bool = False, since: float | None = None) -> SyncOutcome:
        started = time.monotonic()
        started_at = now()
        timings: dict[str, float] = {}
        self._timings = timings
        previous = self.live.sha if self.live else None
        spec = self.spec
        self.status = self.status.model_copy(update={"ref": spec.pin or spec.ref})
        sha: str | None = None
        mirror: Mirror | None = None
        try:
            with timed(timings, "fetch"):
                mirror = self._fetch(since if since is not None else started)
                sha = self._resolve(mirror)
            live_ok = self.live is not None and self.live.alive()
            if self.live is not None and not live_ok:  # found dead here before _supervise did
                dead = f"code server for {self.live.sha[:12]} exited; republishing it"
                self._tell(Kind.CRASHED, self.live.sha, dead)
            if self.live is not None and sha == self.live.sha and live_ok and not self._republish:
                self._condition(ConditionType.SYNCED, True, Reason.PUBLISHED, f"serving {sha}")
                self.failed_sha = None
                self._retry_at = None
                return SyncOutcome(spec.name, False, sha, previous)
            if sha == self.failed_sha and not force:
                return SyncOutcome(spec.name, False, previous, previous, reason="Stalled")
            waiting = self._retry_at is not None and time.monotonic() < self._retry_at
            if sha == self._retry_sha and waiting and not force:
                # A poll between retries: the backoff, not the poll period, paces them.
                return SyncOutcome(spec.name, False, previous, previous, reason="RetryPending")
            self._retry_sha = sha
            self._publish(mirror, sha)
            self._republish = False
            self.failed_sha = None
            self._settled()
            elapsed = time.monotonic() - started
            self._save(last_successful_sync=now(), sync_duration_seconds=round(elapsed, 3))
            self._emit(started_at, sha, previous, Outcome.PUBLISHED, mirror, force)
            return SyncOutcome(spec.name, sha != previous, sha, previous)
        except StepFailed as exc:
            message = self._schedule_retry(exc)
            self._condition(ConditionType.SYNCED, False, exc.reason, message)
            self.status = self.status.model_copy(update={"failures": self.status.failures + 1})
            self._emit(
                started_at,
                sha,
                previous,
                Outcome.FAILED,
                mirror,
                force,
                exc,
                message.split("\n")[0],
            )
            return SyncOutcome(
                spec.name, False, previous, previous, error=message, reason=exc.reason
            )
        finally:
            # However the pass ended, no publish is in progress any more.
            self._save(last_sync=now(), progressing_commit=None)

    def _progress(self, step: str, sha: str) -> None:
        """Say which step a publish is in (Synced=False, Progressing), for `dagfleet` progress
        and the status page; a restart of the live commit (no publish) says nothing."""
        synced = self.status.condition(ConditionType.SYNCED)
        if synced is None or synced.reason != Reason.PROGRESSING:
            return
        self._condition(
            ConditionType.SYNCED, False, Reason.PROGRESSING, f"{STEP_WORDS[step]} {sha[:12]}"
        )
        self._save()

    def _tell(self, kind: Kind, sha: str | None, message: str) -> None:
        self.ctx.events.publish(
            Event(kind, self.spec.name, self.spec.repo, self.spec.env, sha, message)
        )

    def _emit(
        self,
        started_at: str,
        sha: str | None,
        previous: str | None,
        outcome: Outcome,
        mirror: Mirror | None,
        forced: bool,
        failure: StepFailed | None = None,
        message: str | None = None,
    ) -> None:
        """Tell subscribers (history, alerts) how this attempt ended."""
        author, subject = commit_info(mirror, sha)
        attempt = Attempt(
            location=self.spec.name,
            repo=self.spec.repo,
            env=self.spec.env,
            commit=sha,
            previous=previous,
            started=started_at,
            finished=now(),
            outcome=outcome,
            steps=tuple(self._timings.items()),
            reason=str(failure.reason) if failure else None,
            message=message,
            transient=failure.transient if failure else False,
            author=author,
            subject=subject,
            forced=forced,
        )
        self.ctx.events.publish(
            Event(
                Kind.ATTEMPT,
                self.spec.name,
                self.spec.repo,
                self.spec.env,
                commit=sha,
                message=message or "",
                attempt=attempt,
            )
        )

    def _schedule_retry(self, exc: StepFailed) -> str:
        """Pace the retry of a transient failure; the message says when it comes.
        A deterministic failure waits for a new commit (or a forced sync)."""
        if not exc.transient:
            self._settled()
            return exc.message
        clock = time.monotonic()
        self._retries.restarted(clock)
        delay = self._retries.wait(clock)
        self._retry_at = clock + delay
        at = time.strftime("%H:%M:%S", time.localtime(time.time() + delay))
        first, _, rest = exc.message.partition("\n")
        note = f"{first} (transient: retrying in {delay:.0f}s, at {at})"
        return f"{note}\n{rest}" if rest else note

    def _settled(self) -> None:
        """No retry pending: the next transient failure starts the backoff again."""
        self._retry_at = None
        self._retry_sha = None
        self._retries = Backoff(first=RETRY_FIRST, cap=RETRY_CAP)

    def _fetch(self, since: float) -> Mirror:
        repo = self.ctx.fleet.repos[self.spec.repo]
        try:
            return self.ctx.mirrors.fetch(repo.name, repo.git_url, since, repo.credentials)
        except GitError as exc:
            local = self.ctx.mirrors.local(repo.name, repo.git_url, repo.credentials)
            if self.live is None and (local.path / "HEAD").exists():
                # Unreachable remote at start-up: serve what the mirror already has.
                self._condition(ConditionType.SYNCED, False, Reason.GIT_FETCH_FAILED, str(exc))
                return local
            raise StepFailed(Reason.GIT_FETCH_FAILED, str(exc), transient=True) from exc

    def _resolve(self, mirror: Mirror) -> str:
        ref = self.spec.pin or self.spec.ref
        try:
            sha = mirror.resolve(ref)
        except GitError as exc:
            raise StepFailed(Reason.REF_NOT_FOUND, str(exc)) from exc
        if sha is None:
            # Not a commit's fault: the next poll looks again (no faster retry).
            kind = "pin" if self.spec.pin else "branch"
            raise StepFailed(
                Reason.REF_NOT_FOUND,
                f"{kind} {ref!r} not found in {self.ctx.fleet.repos[self.spec.repo].git_url}",
            )
        return sha

    def _pipeline(self) -> Pipeline:
        return Pipeline(
            self.ctx.fleet,
            self.ctx.layout,
            self.ctx.builder,
            self.ctx.install_slots,
            cancel=self._stop,
        )

    def _start(self, mirror: Mirror | None, sha: str) -> Server:
        """The pipeline's steps, then a new server that has loaded its definitions.
        `mirror` None: the commit's tree is already there (resume, restart)."""
        pipeline = self._pipeline()
        where = self.ctx.layout.checkouts(self.spec.name)
        if mirror is None:
            mirror = self.ctx.mirrors.local(
                self.spec.repo, self.ctx.fleet.repos[self.spec.repo].git_url
            )
        candidate: Candidate = pipeline.prepare(
            mirror,
            self.spec,
            sha,
            debug=self.debug_port is not None,
            timings=self._timings,
            on_step=lambda step: self._progress(step, sha),
        )
        assert candidate.env is not None and candidate.target is not None
        checkpoint("env")
        if self._stop.is_set():
            raise LoadCancelled(f"{self.spec.name}: stopped before starting {sha[:12]}")
        self._generation += 1
        debug = None
        if self.debug_port is not None:
            # Old and new servers overlap during a handoff; alternate between two ports.
            debug = self.debug_port + (self._generation % 2)
        server = self.ctx.start_server(
            self.spec.name,
            sha,
            where / sha,
            candidate.env,
            candidate.target,
            dict(candidate.environ),
            debug,
        )
        self._progress("load", sha)
        try:
            with timed(self._timings, "load"):
                codeserver.wait_loaded(
                    server, self.ctx.layout.log(self.spec.name), cancel=self._stop
                )
        except LoadCancelled:
            self._discard(server)
            raise
        except LoadFailed as exc:
            if self.live is None:
                # Nothing good to serve: let the UI show the error from this server.
                self._adopt_error_server(server)
            else:  # stopped in the background: the failure is reported (and alerted) at once
                threading.Thread(target=self._discard, args=(server,), daemon=True).start()
            raise StepFailed(
                Reason.DEFINITIONS_INVALID, f"{sha[:12]}: {lead_with_error(exc.detail)}"
            ) from exc
        if self.ctx.spares is not None and debug is None:
            self.ctx.spares.replenish(candidate.env)
        return server

    def _publish(self, mirror: Mirror, sha: str) -> None:
        where = self.ctx.layout.checkouts(self.spec.name)
        self._condition(ConditionType.SYNCED, False, Reason.PROGRESSING, f"publishing {sha[:12]}")
        # Said at once, not at the first step: `commit` keeps naming what serves meanwhile.
        self._save(progressing_commit=sha)
        try:
            server = self._start(mirror, sha)
        except StepFailed as exc:
            if not exc.transient:
                self.failed_sha = sha
            raise exc
        checkpoint("loaded")
        # Keep the previous commit's tree: runs in flight on the retiring server use it.
        previous = self.live.sha if self.live is not None else self.status.last_good_commit
        self._go_live(server)
        keep = {sha, *self._draining} | ({previous} if previous else set())
        checkout.collect_garbage(where, keep)

    def _go_live(self, server: Server) -> None:
        where = self.ctx.layout.checkouts(self.spec.name)
        checkout.publish(where, server.sha)
        checkpoint("current")
        codeserver.take_over(server, self.ctx.layout.socket(self.spec.name))
        checkpoint("takeover")
        old, self.live = self.live, server
        self._unhealthy = 0
        if self.error_server is not None:
            self._discard(self.error_server)
            self.error_server = None
        # Reload the webserver before recording the commit: a status naming a commit
        # means the UI already shows that commit's definitions.
        self.ctx.on_published(self.spec.name)
        self._condition(
            ConditionType.SERVING, True, Reason.CODE_SERVER_RUNNING, f"serving {server.sha}"
        )
        self._condition(ConditionType.SYNCED, True, Reason.PUBLISHED, f"serving {server.sha}")
        self._save(
            commit=server.sha,
            last_good_commit=server.sha,
            progressing_commit=None,
            address=str(self.ctx.layout.socket(self.spec.name)),
            pid=server.child.pid,
            debug_port=server.debug_port,
            dagster_version=server.env.dagster_version(),
            dependency_hash=server.env.hash,
        )
        checkpoint("status")
        if old is not None:
            self._draining.add(old.sha)
            threading.Thread(target=self._retire, args=(old,), daemon=True).start()

    def _retire(self, server: Server) -> None:
        codeserver.retire(server)
        self.ctx.forget(server)
        self._draining.discard(server.sha)

    def _discard(self, server: Server, grace: float = 2.0) -> None:
        self.ctx.discard(server, grace)

    def _adopt_error_server(self, server: Server) -> None:
        if server.alive():
            codeserver.take_over(server, self.ctx.layout.socket(self.spec.name))
            if self.error_server is not None:
                self._discard(self.error_server)
            self.error_server = server
            self.ctx.on_published(self.spec.name)
        else:
            self._discard(server)
        self._condition(
            ConditionType.SERVING, False, Reason.NO_GOOD_COMMIT, "no commit has loaded yet"
        )

    # ---- resume and supervision -------------------------------------------------------
    def _resume(self) -> None:
        """Serve `current` again right away after a restart, before any fetch."""
        sha = checkout.current_sha(self.ctx.layout.checkouts(self.spec.name))
        if sha is None or self.spec.repo not in self.ctx.fleet.repos:
            return
        try:
            server = self._start(None, sha)
        except StepFailed as exc:
            self._condition(ConditionType.SERVING, False, exc.reason, exc.message)
            return
        self._go_live(server)

    def _supervise(self) -> None:
        """Restart a live server that died or stopped answering, paced by `Backoff`."""
        live = self.live
        if live is None or self._stop.is_set():
            return
        clock = time.monotonic()
        if live.alive():
            self._restarts.running(live.started, clock)
            if clock >= self._next_health:
                self._check_health(live)
            return
        if self._restarts.wait(clock) > 0:
            return
        code = live.child.proc.returncode
        crashed = f"code server for {live.sha[:12]} exited with {code}; restarting"
        self._condition(ConditionType.SERVING, False, Reason.CODE_SERVER_CRASHED, crashed)
        self._save()
        self._tell(Kind.CRASHED, live.sha, crashed)
        self._discard(live, 0.0)  # reap it and whatever it left in its process group
        self._restarts.restarted(clock)
        try:
            server = self._start(None, live.sha)
        except StepFailed as exc:
            self._condition(ConditionType.SERVING, False, Reason.CODE_SERVER_CRASHED, exc.message)
            self._save()
            return
        self.live = None  # the dead one needs no drain
        self._go_live(server)
        self._tell(Kind.RECOVERED, server.sha, f"code server for {server.sha[:12]} serves again")

    def _check_health(self, live: Server) -> None:
        """gRPC health check; a server that fails it HEALTH_FAILURES times is killed,
        and the next pass restarts it like a crashed one."""
        self._next_health = time.monotonic() + HEALTH_EVERY
        if live.debug_port is not None:
            # Under debugpy a breakpoint may pause the whole server process: a user
            # who is debugging it must not see it killed as hung.
            return
        if self._probe is None or self._probe.socket != live.socket:
            self._close_probe()
            self._probe = grpc.HealthProbe(live.socket)
        if self._probe.check():
            self._unhealthy = 0
            return
        self._unhealthy += 1
        log.warning(
            "%s: health check %d/%d failed", self.spec.name, self._unhealthy, HEALTH_FAILURES
        )
        if self._unhealthy >= HEALTH_FAILURES:
            self._unhealthy = 0
            live.child.stop(2.0)
