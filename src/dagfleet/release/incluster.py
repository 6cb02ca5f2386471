"""Releases by the in-cluster dagfleet: a push webhook queues them, one worker runs them.

The in-cluster API (render/k8s_dagfleet.py's `serve.py`) has no `dagfleet up` to sync
locations. With a deploy repository configured (`deploy_from_env`: DAGFLEET_DEPLOY_REPO,
DAGFLEET_DEPLOY_BRANCH, DAGFLEET_DEPLOY_PATH, and the credentials Secret's files under
DAGFLEET_DEPLOY_CREDENTIALS_DIR), `InClusterController` turns what the runtime would
do into releases, judged and written exactly as `dagfleet release` does (releaser.py):

- a verified push of a branch (`request_sync_for_push`) queues `release run REPO
  --env ENV` for every environment whose location of that repo follows the branch
  (not pinned), and returns those locations at once (the API answers 202);
- `sync(repo, env)` (POST /api/v1/repos/{name}/sync) queues the same, and waits for it
  when asked to;
- `promote(repo, source, target)` (POST /api/v1/promote) queues `release promote` and
  waits for its outcome: a rejection is a 409 with the reason.

`ReleaseQueue` runs one job at a time in one worker thread (judges share the
mirrors, environments and checkouts under the pod's work directory). A job
already waiting absorbs the same job queued again: it reads the branch tip only
when it starts, so repeated pushes of one branch release the newest commit once.
A job queued while the same job runs waits its turn (the running one may have
read the older tip).

Statuses: the base controller's (the status ConfigMap Flux applies, see
k8s_dagfleet.py) with, per location, the record the last in-pod release left
in the deploy repository laid over it, until the ConfigMap carries a newer one
(a release from CI after it): the API, metrics and alerts show an outcome as
soon as it is pushed, not once Flux has applied it.

Without a deploy repository everything that acts answers 503 with `NOT_CONFIGURED`,
which names the setting and the fix.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

from dagfleet.control import ControlError, Controller, PromoteOutcome, SyncOutcome
from dagfleet.gitops.urls import same_url
from dagfleet.layout import Layout
from dagfleet.release.deployrepo import DeployRepo
from dagfleet.release.releaser import REJECTED, RELEASED, ReleaseError, Report, promote, run
from dagfleet.spec import Fleet, load_fleet
from dagfleet.spec.credentials import GitCredentials, SecretRef
from dagfleet.status import LocationStatus

ENV_URL = "DAGFLEET_DEPLOY_REPO"
ENV_BRANCH = "DAGFLEET_DEPLOY_BRANCH"
ENV_PATH = "DAGFLEET_DEPLOY_PATH"
ENV_CREDENTIALS = "DAGFLEET_DEPLOY_CREDENTIALS_DIR"
# Keys of the credentials Secret (`dagfleet-deploy-repo`), files in ENV_CREDENTIALS.
TOKEN_KEY, USERNAME_KEY, SSH_KEY, KNOWN_HOSTS_KEY = "token", "username", "ssh", "known_hosts"
NOT_CONFIGURED = (
    "in-cluster releases are off: no deploy repository is configured (DAGFLEET_DEPLOY_REPO "
    "is unset). Set `deploy_repo: <git URL>` in the deploy repository's render.yaml (or "
    "`dagfleet render k8s --deploy-repo URL`) and create the Secret dagfleet-deploy-repo "
    "with a token or an SSH key that may push to it (docs/deploy.md, 'Releases in the "
    "cluster'); or run `dagfleet release` from CI"
)


# ---- configuration ---------------------------------------------------------------------
def credentials_from_dir(directory: Path, work: Path) -> GitCredentials | None:
    """The deploy repo's credentials from the mounted Secret's files, or None without them.

    `token` (and optionally `username`): an HTTPS token; `ssh` (and optionally
    `known_hosts`): an SSH deploy key, copied to `work` with mode 0600 since ssh refuses
    a key file others can read (a Secret volume with an fsGroup is group-readable)."""
    token, key = directory / TOKEN_KEY, directory / SSH_KEY
    if token.is_file() and key.is_file():
        raise ReleaseError(
            f"{directory}: the deploy repository's Secret holds both `{TOKEN_KEY}` and "
            f"`{SSH_KEY}`: keep one (a token for an https URL, a key for an ssh URL)",
            2,
        )
    if token.is_file():
        user = directory / USERNAME_KEY
        username = user.read_text().strip() if user.is_file() else None
        return GitCredentials(username=username or None, token=SecretRef(from_file=str(token)))
    if key.is_file():
        work.mkdir(parents=True, exist_ok=True)
        copy = work / "deploy-repo-key"
        copy.unlink(missing_ok=True)
        fd = os.open(copy, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(key.read_bytes())
        known = directory / KNOWN_HOSTS_KEY
        return GitCredentials(
            ssh_key_file=str(copy), ssh_known_hosts_file=str(known) if known.is_file() else None
        )
    return None


def deploy_from_env(environ: Mapping[str, str], work: Path) -> DeployRepo | None:
    """The deploy repository the environment names (None: releases are off)."""
    url = environ.get(ENV_URL, "").strip()
    if not url:
        return None
    path = environ.get(ENV_PATH, "").strip().strip("/")
    if ".." in Path(path).parts:
        raise ReleaseError(f"{ENV_PATH}={path!r}: must stay inside the deploy repository", 2)
    creds_dir = environ.get(ENV_CREDENTIALS, "").strip()
    creds = credentials_from_dir(Path(creds_dir), work) if creds_dir else None
    branch = environ.get(ENV_BRANCH, "").strip() or "main"
    return DeployRepo(url, branch, path, credentials=creds)


# ---- the queue -------------------------------------------------------------------------
@dataclass(frozen=True)
class Job:
    """`release run REPO --env ENV`, or with `source`, `release promote REPO --from
    SOURCE --to ENV`."""

    repo: str
    env: str
    source: str | None = None

    def describe(self) -> str:
        if self.source is not None:
            return f"promote {self.repo} from {self.source} to {self.env}"
        return f"release {self.repo} to {self.env}"


Runner = Callable[[Job], Report]


def runner(fleet_dir: Path, deploy: DeployRepo) -> Runner:
    """The real job: the fleet files as they are now, judged under the fleet's state dir."""

    def run_job(job: Job) -> Report:
        fleet = load_fleet(fleet_dir)
        layout = Layout.for_fleet(fleet_dir)
        if job.source is not None:
            return promote(fleet, layout, deploy, job.repo, job.source, job.env)
        return run(fleet, layout, deploy, repo=job.repo, env=job.env)

    return run_job


class ReleaseQueue:
    """Jobs in arrival order, one at a time in one worker thread; a waiting job absorbs
    the same job queued again (both callers get its outcome)."""

    def __init__(self, run_job: Runner, log: Callable[[str], None] | None = None) -> None:
        self._run = run_job
        self._log = log or (lambda line: print(f"dagfleet release: {line}", file=sys.stderr))
        self._cond = threading.Condition()
        self._pending: OrderedDict[Job, Future[Report]] = OrderedDict()
        self._running: Job | None = None
        self._stopped = False
        self._statuses: dict[str, LocationStatus] = {}  # location -> as the last release left it
        self.done = 0  # jobs finished (released, rejected or failed)
        self._thread = threading.Thread(target=self._work, name="release-queue", daemon=True)
        self._thread.start()

    def submit(self, job: Job) -> Future[Report]:
        with self._cond:
            if self._stopped:
                raise ControlError("the release queue is stopping", 503)
            waiting = self._pending.get(job)
            if waiting is not None:
                return waiting
            future: Future[Report] = Future()
            self._pending[job] = future
            self._cond.notify_all()
            return future

    def statuses(self) -> dict[str, LocationStatus]:
        """Each location's status record as the last release of it left it (a copy)."""
        with self._cond:
            return dict(self._statuses)

    def snapshot(self) -> tuple[Job | None, list[Job]]:
        """The job running now and the jobs waiting, in order."""
        with self._cond:
            return self._running, list(self._pending)

    def stop(self, timeout: float = 30.0) -> None:
        with self._cond:
            self._stopped = True
            for future in self._pending.values():
                future.cancel()
            self._pending.clear()
            self._cond.notify_all()
        self._thread.join(timeout)

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._stopped:
                    self._cond.wait()
                if self._stopped:
                    return
                job, future = self._pending.popitem(last=False)
                self._running = job
            if not future.set_running_or_notify_cancel():
                continue
            started = time.monotonic()
            try:
                report = self._run(job)
            except Exception as exc:  # reported; the worker goes on
                self._log(f"{job.describe()} failed: {exc}")
                future.set_exception(exc)
            else:
                self._record(job, report, time.monotonic() - started)
                future.set_result(report)
            finally:
                with self._cond:
                    self._running = None
                    self.done += 1
                    self._cond.notify_all()

    def _record(self, job: Job, report: Report, seconds: float) -> None:
        parsed = {}
        for location, text in report.statuses.items():
            try:
                parsed[location] = LocationStatus.model_validate_json(text)
            except ValueError:
                continue
        with self._cond:
            self._statuses.update(parsed)
        for o in report.outcomes:
            self._log(
                f"{job.describe()}: {o.location} {o.result} {(o.commit or '-')[:12]} "
                f"({o.reason}: {o.message})"
            )
        pushed = report.deploy_commit[:12] if report.deploy_commit else "nothing"
        self._log(f"{job.describe()}: pushed {pushed} to the deploy repository in {seconds:.1f}s")

    def wait_idle(self, timeout: float) -> bool:
        """True once nothing runs or waits (tests and shutdown)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._pending or self._running is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True


# ---- the controller --------------------------------------------------------------------
def _stamp(status: LocationStatus) -> str:
    """When the record last changed: its newest condition transition (ISO, UTC)."""
    return max((c.last_transition for c in status.conditions), default="")


class InClusterController:
    """A `Controller` over `base` (the offline one: fleet files, recorded statuses) whose
    sync, push and promote become releases into the deploy repository."""

    def __init__(self, base: Controller, queue: ReleaseQueue | None, branch: str = "main") -> None:
        self.base = base
        self.queue = queue
        self.branch = branch  # the deploy repository's, for promotion outcomes
        # The API answers a push it queued with 202 Accepted (api/routes_fleet.py).
        self.queues_pushes = queue is not None

    # ---- delegated ----
    def fleet(self) -> Fleet:
        return self.base.fleet()

    def registry_changed(self) -> None:
        self.base.registry_changed()

    def playground_changed(self, env: str) -> None:
        self.base.playground_changed(env)

    def statuses(self) -> list[LocationStatus]:
        recorded = self.base.statuses()
        fresh = self.queue.statuses() if self.queue is not None else {}
        if not fresh:
            return recorded
        out = []
        for status in recorded:
            mine = fresh.pop(status.location, None)
            out.append(mine if mine is not None and _stamp(mine) >= _stamp(status) else status)
        known = set(self.base.fleet().repos) if fresh else set()
        out += [s for _, s in sorted(fresh.items()) if s.repo in known]
        return out

    # ---- releases ----
    def _queue(self) -> ReleaseQueue:
        if self.queue is None:
            raise ControlError(NOT_CONFIGURED, 503)
        return self.queue

    def request_sync_for_push(self, git_url: str, branch: str) -> list[str]:
        """Queue a release of every environment whose location of a repo with this URL
        follows `branch` (pinned ones do not); the locations it concerns."""
        queue = self._queue()
        fleet = self.fleet()
        hit: list[str] = []
        jobs: list[Job] = []
        for loc in fleet.locations():
            repo = fleet.repos.get(loc.repo)
            if (
                loc.playground
                or repo is None
                or loc.pin
                or loc.ref != branch
                or not same_url(repo.git_url, git_url)
            ):
                continue
            hit.append(loc.name)
            job = Job(loc.repo, loc.env)
            if job not in jobs:
                jobs.append(job)
        for job in jobs:
            queue.submit(job)
        return hit

    def sync(self, repo: str | None, env: str | None, wait: bool) -> list[SyncOutcome]:
        queue = self._queue()
        fleet = self.fleet()
        jobs: list[Job] = []
        queued: list[SyncOutcome] = []
        for loc in fleet.locations():
            if loc.playground or (repo is not None and loc.repo != repo):
                continue
            if env is not None and loc.env != env:
                continue
            queued.append(SyncOutcome(loc.name, False, None, reason="Queued"))
            if Job(loc.repo, loc.env) not in jobs:
                jobs.append(Job(loc.repo, loc.env))
        futures = [queue.submit(job) for job in jobs]
        if not wait:
            return queued
        out: list[SyncOutcome] = []
        for job, future in zip(jobs, futures, strict=True):
            try:
                report = future.result()
            except ReleaseError as exc:
                code = 422 if exc.code == 2 else 409
                raise ControlError(f"{job.describe()}: {exc}", code) from exc
            for o in report.outcomes:
                out.append(
                    SyncOutcome(
                        o.location,
                        changed=o.result == RELEASED,
                        commit=o.serving,
                        error=o.message if o.result == REJECTED else None,
                        reason=o.reason,
                    )
                )
        return out

    def promote(self, repo: str, source: str, target: str, merge: bool) -> PromoteOutcome:
        """`release promote`: target's manifests move to what source's serve, once loaded."""
        if merge:
            raise ControlError(
                "merge: the in-cluster dagfleet promotes by writing the deploy repository "
                "(target's manifests), never the code repository's branches: promote "
                "without merge",
                422,
            )
        queue = self._queue()
        job = Job(repo, target, source)
        try:
            report = queue.submit(job).result()
        except ReleaseError as exc:
            raise ControlError(str(exc), 422 if exc.code == 2 else 409) from exc
        rejected = [o for o in report.outcomes if o.result == REJECTED]
        if rejected:
            o = rejected[0]
            raise ControlError(
                f"{job.describe()}: {o.location} rejected {(o.commit or '-')[:12]} "
                f"({o.reason}): {o.message}",
                409,
            )
        if not report.outcomes or report.outcomes[0].commit is None:
            raise ControlError(f"{job.describe()}: no location of {repo} in {target}", 404)
        return PromoteOutcome(
            repo=repo,
            source_env=source,
            target_env=target,
            commit=report.outcomes[0].commit,
            target_branch=f"{self.branch} (deploy repository)",
            notes=[f"{o.location}: {o.result} ({o.message})" for o in report.outcomes],
        )


def start(base: Controller, fleet_dir: Path, environ: Mapping[str, str]) -> InClusterController:
    """The controller `serve.py` runs: releasing when the environment names a deploy
    repository (its work files under the fleet's state directory), else refusing."""
    work = Layout.for_fleet(fleet_dir).root / "release"
    deploy = deploy_from_env(environ, work)
    if deploy is None:
        return InClusterController(base, None)
    return InClusterController(base, ReleaseQueue(runner(fleet_dir, deploy)), deploy.branch)
