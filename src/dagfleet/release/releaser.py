"""`dagfleet release`: judge commits, write the accepted ones into the deploy repository.

run: for every selected location, the commit to judge (`--commit`, else the pin,
else the branch tip) is loaded exactly as the local runtime would (judge.py). An
accepted commit goes into commits.yaml, the Flux render (render_k8s plus the
chart's HelmRelease and flux/sync.yaml for this branch) is redone with
`K8sOptions.commits` pinned to commits.yaml, and both are committed and pushed
in one commit naming the repo, environment and commit. A rejected commit
changes only its location's status file and the status ConfigMap rendered from
those files (`manifests/instance/status.yaml`, which the in-cluster API serves);
commits.yaml and the Deployments keep the last accepted commit, and the caller
exits 1.

promote: B moves only to the commit A's manifests serve (the rule of local
promotion, reconcile.promote), after that commit has loaded in B's environment.

The change is applied to the deploy branch's tip and re-applied to a newer tip
when another release pushed first (deployrepo.py), so concurrent releases keep
each other's changes; a location another release moved meanwhile to a newer
commit (a descendant of ours) keeps that commit.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from dagfleet.fsutil import exclusive
from dagfleet.gitops.git import GitError, Mirror
from dagfleet.layout import Layout
from dagfleet.reconcile.context import MirrorPool
from dagfleet.release import record as rec
from dagfleet.release.deployrepo import DeployRepo
from dagfleet.release.judge import judge
from dagfleet.render.common import RenderError, git_url_problems
from dagfleet.render.flux import FluxOptions, render_flux
from dagfleet.render.write import write
from dagfleet.spec import Fleet, LocationSpec
from dagfleet.status import LocationStatus, Reason
from dagfleet.status.conditions import ConditionType

_SHA = re.compile(r"^[0-9a-f]{40}$")
RELEASED, UNCHANGED, REJECTED = "released", "unchanged", "rejected"


class ReleaseError(Exception):
    """A release that cannot start; `code` is the CLI's exit code (2 bad input, 1 refused)."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Outcome:
    """What happened to one location: `commit` was judged, `serving` is in the manifests."""

    location: str
    repo: str
    env: str
    result: str  # released | unchanged | rejected
    commit: str | None
    serving: str | None
    reason: str
    message: str
    seconds: float = 0.0


@dataclass(frozen=True)
class Report:
    outcomes: list[Outcome]
    deploy_commit: str | None = None  # the deploy repo commit pushed, None when unchanged
    # location -> its status record (`status/<location>.json`) as this release left it,
    # for the locations it judged: what the in-cluster API serves at once (incluster.py).
    statuses: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(o.result != REJECTED for o in self.outcomes)


@dataclass
class _Decision:
    loc: LocationSpec
    outcome: Outcome
    seen: str | None  # the commit commits.yaml had when we judged
    source: str | None = None  # promotion: the environment the commit comes from
    extra: dict[str, str] = field(default_factory=dict)


# ---- entry points ----------------------------------------------------------------------
def run(
    fleet: Fleet,
    layout: Layout,
    deploy: DeployRepo,
    repo: str | None = None,
    env: str | None = None,
    commit: str | None = None,
) -> Report:
    """Judge and release every selected location (see the module docstring)."""
    _check_fleet(fleet, repo, env)
    if commit is not None:
        if repo is None:
            raise ReleaseError("--commit needs REPO: the commit belongs to one repository", 2)
        if not _SHA.match(commit):
            raise ReleaseError(
                f"--commit {commit!r}: pass the full 40-hex commit (`git rev-parse HEAD`)", 2
            )
    wanted = [
        loc
        for loc in fleet.locations()
        if not loc.playground and (repo is None or loc.repo == repo) and (env in (None, loc.env))
    ]
    if not wanted:
        raise ReleaseError("no location to release: the fleet has none for that repo/env", 2)
    released = _released(deploy)
    pool = MirrorPool(layout)
    decisions = []
    for loc in wanted:
        with _judging(layout, loc):
            candidate = commit or _tip(fleet, pool, loc)
            if isinstance(candidate, Outcome):  # the branch could not be read
                decisions.append(_Decision(loc, candidate, _serving(released, loc)))
                continue
            decisions.append(_judged(fleet, layout, loc, candidate, released))
    return _apply(fleet, layout, pool, deploy, decisions)


def promote(
    fleet: Fleet,
    layout: Layout,
    deploy: DeployRepo,
    repo: str,
    source: str,
    target: str,
) -> Report:
    """Release to `target` the commit `source` serves in the manifests (and only that)."""
    _check_fleet(fleet, repo, None)
    spec = fleet.repos[repo]
    for env in (source, target):
        _check_env(fleet, env)
        if not spec.runs_in(env):
            raise ReleaseError(f"repo {repo!r} does not run in environment {env!r}", 2)
    if source == target:
        raise ReleaseError("--from and --to are the same environment", 2)
    if target in spec.pins:
        raise ReleaseError(
            f"{repo}-{target} is pinned to {spec.pins[target]!r} in repos/{repo}.yaml: "
            "remove the pin to promote"
        )
    released = _released(deploy)
    shas = set()
    for name in spec.location_names(source):
        if name not in released:
            raise ReleaseError(
                f"{name} has no released commit to promote: run `dagfleet release run "
                f"{repo} --env {source}` first (see `dagfleet release status`)"
            )
        shas.add(released[name].commit)
    if len(shas) != 1:
        raise ReleaseError(
            f"the locations of {repo} in {source} serve different commits "
            f"({', '.join(sorted(s[:12] for s in shas))}): release them to one commit first"
        )
    (sha,) = shas
    pool = MirrorPool(layout)
    decisions = []
    for loc in fleet.locations():
        if loc.repo != repo or loc.env != target or loc.playground:
            continue
        with _judging(layout, loc):
            decision = _judged(fleet, layout, loc, sha, released)
        decision.source = source
        decisions.append(decision)
    return _apply(fleet, layout, pool, deploy, decisions)


def status(deploy: DeployRepo) -> list[dict[str, object]]:
    """Every location the deploy repo knows: its released commit and last judgement."""
    files = deploy.read(rec.STATUS_DIR)
    released = _released(deploy, check_render=False)
    rows: dict[str, dict[str, object]] = {}
    for name, r in released.items():
        rows[name] = {"location": name, "repo": r.repo, "env": r.env, "commit": r.commit}
    for path, text in files.items():
        if not path.endswith(".json"):
            continue
        try:
            st = LocationStatus.model_validate_json(text)
        except ValueError:
            continue
        row = rows.setdefault(
            st.location, {"location": st.location, "repo": st.repo, "env": st.env, "commit": None}
        )
        synced = st.condition(ConditionType.SYNCED)
        row["ready"] = st.ready
        row["synced"] = synced.status if synced else "Unknown"
        row["reason"] = synced.reason if synced else ""
        row["message"] = synced.message if synced else ""
        row["status"] = json.loads(text)
    return [rows[k] for k in sorted(rows)]


# ---- judging ---------------------------------------------------------------------------
def _judged(
    fleet: Fleet,
    layout: Layout,
    loc: LocationSpec,
    sha: str,
    released: Mapping[str, rec.Released],
) -> _Decision:
    seen = _serving(released, loc)
    if seen == sha:
        outcome = Outcome(
            loc.name, loc.repo, loc.env, UNCHANGED, sha, sha, Reason.PUBLISHED,
            f"{sha[:12]} is already released",
        )  # fmt: skip
        return _Decision(loc, outcome, seen)
    v = judge(fleet, layout, loc, sha)
    if v.ok and v.commit is not None:
        outcome = Outcome(
            loc.name, loc.repo, loc.env, RELEASED, v.commit, v.commit, Reason.PUBLISHED,
            f"{v.commit[:12]} loaded ({v.message}) and was released", v.seconds,
        )  # fmt: skip
    else:
        outcome = Outcome(
            loc.name, loc.repo, loc.env, REJECTED, v.commit or sha, seen, v.reason, v.message,
            v.seconds,
        )  # fmt: skip
    return _Decision(loc, outcome, seen)


def _judging(layout: Layout, loc: LocationSpec) -> contextlib.AbstractContextManager[None]:
    """One judge of a repo at a time per state directory (threads and processes): the
    mirror, checkouts and builds under it are shared, and two first fetches of one
    mirror at once collide. Releases on other machines only meet at the push."""
    return exclusive(layout.root / "release-locks", loc.repo)


def _tip(fleet: Fleet, pool: MirrorPool, loc: LocationSpec) -> str | Outcome:
    """The commit the location's pin or branch names now, or why it cannot be read."""
    repo = fleet.repos[loc.repo]
    ref = loc.pin or loc.ref
    try:
        sha = pool.fetch(repo.name, repo.git_url, 0.0, repo.credentials).resolve(ref)
    except GitError as exc:
        return Outcome(
            loc.name, loc.repo, loc.env, REJECTED, None, None, Reason.GIT_FETCH_FAILED, str(exc)
        )
    if sha is None:
        return Outcome(
            loc.name, loc.repo, loc.env, REJECTED, None, None, Reason.REF_NOT_FOUND,
            f"{ref!r} not found in {repo.git_url}",
        )  # fmt: skip
    return sha


def _released(deploy: DeployRepo, check_render: bool = True) -> dict[str, rec.Released]:
    """commits.yaml at the deploy branch's tip (read before judging, to skip known commits);
    a missing or wrong render.yaml is refused here, before anything is judged."""
    try:
        if check_render:
            rec.render_settings(deploy.read(rec.RENDER_FILE).get(rec.RENDER_FILE))
        return rec.parse_commits(deploy.read(rec.COMMITS_FILE).get(rec.COMMITS_FILE))
    except GitError as exc:
        raise ReleaseError(f"deploy repo {deploy.url} ({deploy.branch}): {exc}") from exc
    except rec.RecordError as exc:
        raise ReleaseError(f"deploy repo {deploy.url} ({deploy.branch}): {exc}", 2) from exc


def _serving(released: Mapping[str, rec.Released], loc: LocationSpec) -> str | None:
    r = released.get(loc.name)
    return r.commit if r is not None else None


# ---- writing ---------------------------------------------------------------------------
def _apply(
    fleet: Fleet,
    layout: Layout,
    pool: MirrorPool,
    deploy: DeployRepo,
    decisions: list[_Decision],
) -> Report:
    """Write the decisions on the deploy branch's tip (again on a newer tip after a race)."""
    final: dict[str, Outcome] = {d.loc.name: d.outcome for d in decisions}
    statuses: dict[str, str] = {}

    def newer(old: str, new: str, loc: LocationSpec) -> bool:
        """True when `new` is a descendant of `old` in the location's repository."""
        repo = fleet.repos[loc.repo]
        mirror: Mirror = pool.local(repo.name, repo.git_url, repo.credentials)
        try:
            return old != new and mirror.is_ancestor(old, new)
        except GitError:
            return False

    def change(root: Path) -> str | None:
        record = rec.parse_commits(_read(root / rec.COMMITS_FILE))
        settings = rec.render_settings(_read(root / rec.RENDER_FILE))
        subjects: list[str] = []
        for d in decisions:
            o = d.outcome
            now = _serving(record, d.loc)
            if o.result == REJECTED:
                old = _read_status(root, o.location)
                st = rec.rejected_status(
                    old, o.location, o.repo, o.env, d.loc.ref, o.commit, o.reason, o.message
                )
                if _write_status(root, st):
                    subjects.append(f"reject {o.repo} for {o.env}: {_short(o.commit)} ({o.reason})")
                final[o.location] = _with_serving(o, now)
                continue
            assert o.commit is not None
            if (
                now is not None
                and now != d.seen
                and now != o.commit
                and newer(o.commit, now, d.loc)
            ):
                # Another release moved this location past our commit meanwhile: keep it.
                final[o.location] = Outcome(
                    o.location, o.repo, o.env, UNCHANGED, o.commit, now, Reason.PUBLISHED,
                    f"another release moved it to the newer {now[:12]} meanwhile", o.seconds,
                )  # fmt: skip
                continue
            if now != o.commit:
                record[o.location] = rec.Released(o.location, o.repo, o.env, o.commit)
                subjects.append(_subject(d, o.commit))
            old = _read_status(root, o.location)
            st = rec.accepted_status(old, o.location, o.repo, o.env, d.loc.ref, o.commit)
            if _write_status(root, st) and now == o.commit:
                # Already released (say the branch went back to it after a rejection):
                # only the status changes, and that is committed too.
                subjects.append(f"{_subject(d, o.commit)} (already released; status updated)")
        statuses.clear()  # this attempt's (the last one is what was pushed)
        for d in decisions:
            text = _read(root / rec.STATUS_DIR / f"{d.loc.name}.json")
            if text is not None:
                statuses[d.loc.name] = text
        names = {loc.name for loc in fleet.locations()}
        record = {n: r for n, r in record.items() if n in names}
        (root / rec.COMMITS_FILE).write_text(rec.dump_commits(record))
        flux = FluxOptions(
            repo_url=settings.flux_repo_url or deploy.url,
            branch=deploy.branch,
            path="./" + "/".join(p for p in (deploy.path, "manifests") if p),
            interval=settings.flux_interval,
            k8s=rec.with_commits(rec.with_deploy(settings.k8s, deploy), record),
            status_records=_status_records(fleet, root),
        )
        _render(fleet, flux, root)
        if not subjects:
            return None
        body = "\n".join(
            f"{d.outcome.location} (repo {d.loc.repo}, environment {d.loc.env}): "
            f"{final[d.loc.name].result} {d.outcome.commit or '-'}"
            for d in decisions
        )
        return "; ".join(subjects) + "\n\n" + body + "\n"

    try:
        pushed = deploy.update(change)
    except GitError as exc:
        raise ReleaseError(f"deploy repo {deploy.url} ({deploy.branch}): {exc}") from exc
    except (rec.RecordError, RenderError) as exc:
        raise ReleaseError(f"deploy repo {deploy.url} ({deploy.branch}): {exc}", 2) from exc
    return Report([final[d.loc.name] for d in decisions], pushed, dict(statuses))


def _render(fleet: Fleet, opts: FluxOptions, root: Path) -> None:
    result = render_flux(fleet, opts)
    for rendered in ("manifests", "flux"):  # files of removed locations go too
        shutil.rmtree(root / rendered, ignore_errors=True)
    write(result, root)


def _status_records(fleet: Fleet, root: Path) -> dict[str, str]:
    """The status records of the fleet's locations, by location (`status/<location>.json`
    as written above): the ConfigMap the in-cluster API serves, rendered into the same
    commit as the status change, so a rejection reaches the API once Flux applies it."""
    records = {}
    for loc in fleet.locations():
        text = _read(root / rec.STATUS_DIR / f"{loc.name}.json")
        if text is not None:
            records[loc.name] = text
    return records


def _read(path: Path) -> str | None:
    return path.read_text() if path.is_file() else None


def _read_status(root: Path, location: str) -> LocationStatus | None:
    text = _read(root / rec.STATUS_DIR / f"{location}.json")
    if text is None:
        return None
    try:
        return LocationStatus.model_validate_json(text)
    except ValueError:
        return None


def _write_status(root: Path, st: LocationStatus) -> bool:
    """Write the status file; True when its content changed."""
    path = root / rec.STATUS_DIR / f"{st.location}.json"
    text = rec.status_text(st)
    if _read(path) == text:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return True


def _subject(d: _Decision, commit: str) -> str:
    """`release demo to A: <sha12>` or `promote demo from A to B: <sha12>`."""
    if d.source is not None:
        return f"promote {d.loc.repo} from {d.source} to {d.loc.env}: {commit[:12]}"
    return f"release {d.loc.repo} to {d.loc.env}: {commit[:12]}"


def _with_serving(o: Outcome, serving: str | None) -> Outcome:
    return Outcome(
        o.location, o.repo, o.env, o.result, o.commit, serving, o.reason, o.message, o.seconds
    )


def _short(sha: str | None) -> str:
    return sha[:12] if sha else "(no commit)"


# ---- checks ----------------------------------------------------------------------------
def _check_fleet(fleet: Fleet, repo: str | None, env: str | None) -> None:
    if repo is not None and repo not in fleet.repos:
        known = ", ".join(sorted(fleet.repos)) or "none"
        raise ReleaseError(f"unknown repo {repo!r}: known repos are {known}", 2)
    if env is not None:
        _check_env(fleet, env)
    # The render refuses these too; checked first so nothing is judged in vain.
    problems = git_url_problems(fleet, "Kubernetes")
    if problems:
        raise ReleaseError("\n".join(problems), 2)


def _check_env(fleet: Fleet, env: str) -> None:
    try:
        fleet.environment(env)
    except KeyError:
        envs = ", ".join(e.name for e in fleet.spec.environments)
        raise ReleaseError(f"unknown environment {env!r}: fleet.yaml defines {envs}", 2) from None
