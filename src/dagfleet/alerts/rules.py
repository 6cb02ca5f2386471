"""The alert rules: events and the passing of time in, notices out. No I/O, no threads.

Each problem is an *episode* keyed by (policy, event, location[, job | schedule | run]):
its first occurrence sends one FIRING notice, repeats while it is open send nothing,
and the event that clears it sends one RESOLVED notice.

- commit_rejected: a failed, non-transient sync attempt; resolved when the location
  publishes (a later commit, or the same one forced).
- not_serving_tip: the location's newest attempted commit has not gone live for
  `minutes` (transient failures included); resolved when the location publishes.
- crash_loop: `crashes` code-server crashes within `minutes`; resolved when the server
  has RECOVERED (or the location published a new server) and no crash followed for
  `quiet_minutes` (default 5).
- run_failed / run_canceled: per job; resolved by a later RUN_SUCCEEDED of that job.
- run_longer_than: a run still going `minutes` after RUN_STARTED; resolved when it ends.
- tick_failed: per schedule/sensor; resolved by its next TICK_SUCCEEDED.
- daemon_down: DAEMON_DOWN; resolved by DAEMON_UP.
- promoted: informational, one notice per promotion, nothing to resolve.
"""

from __future__ import annotations

import itertools
import json
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from fnmatch import fnmatchcase

from dagfleet.alerts import links
from dagfleet.alerts.model import Episode, Notice, State
from dagfleet.events import Event, Kind, Outcome
from dagfleet.spec.alerts import RUN_EVENTS, AlertEvent, PolicySpec
from dagfleet.spec.models import Fleet

E = AlertEvent


def iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds")


def _any(patterns: list[str], value: str) -> bool:
    return not patterns or any(fnmatchcase(value, p) for p in patterns)


def _tags(data: dict[str, str]) -> dict[str, str]:
    raw = data.get("tags")
    if not raw:
        return {}
    try:
        parsed = json.loads(raw)
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in parsed.items()} if isinstance(parsed, dict) else {}


def matches(policy: PolicySpec, kind: AlertEvent, event: Event) -> bool:
    """Does `event` (for alert event `kind`) fall in the policy's scope?"""
    if kind not in policy.kinds:
        return False
    # The daemon's events belong to no location: every policy with the event sees them.
    if event.location and not (
        _any(policy.repos, event.repo)
        and _any(policy.environments, event.env)
        and _any(policy.locations, event.location)
    ):
        return False
    if kind in RUN_EVENTS:
        if not _any(policy.jobs, event.data.get("job", "")):
            return False
        tags = _tags(event.data)
        if any(not fnmatchcase(tags.get(k, ""), v) for k, v in policy.tags.items()):
            return False
    return True


def policies_for(fleet: Fleet, event: Event) -> list[PolicySpec]:
    """Fleet-wide policies, then the event's repo's own (they see only its locations)."""
    out = list(fleet.spec.alerts.policies)
    repo = fleet.repos.get(event.repo) if event.repo else None
    if repo is not None and repo.alerts is not None:
        out += [p.model_copy(update={"repos": [repo.name]}) for p in repo.alerts.policies]
    return out


@dataclass
class _Pending:
    """Something a timer may turn into an episode: a commit not live, a run still going."""

    policy: PolicySpec
    event: Event
    since: float
    sub: str = ""


class Rules:
    """The episodes of every policy; call `on_event` for each event and `tick` now and then."""

    def __init__(self, fleet: Callable[[], Fleet], webserver: Callable[[], str]) -> None:
        self.fleet = fleet
        self.webserver = webserver
        self.open: dict[str, Episode] = {}
        self._tip: dict[tuple[str, str], _Pending] = {}
        self._runs: dict[tuple[str, str], _Pending] = {}
        self._crashes: dict[tuple[str, str], deque[float]] = {}
        self._recovered: dict[str, tuple[float, PolicySpec, Event]] = {}
        self._seq = itertools.count(1)

    # ---- notices ----------------------------------------------------------------------
    def _links(self, event: Event, commit: str | None, run_id: str | None) -> list[tuple[str, str]]:
        web = self.webserver()
        out: list[tuple[str, str]] = []
        if run_id:
            out.append(("run", links.run_url(web, run_id)))
        if event.location:
            out.append(("location", links.location_url(web, event.location)))
        if commit:
            repo = self.fleet().repos.get(event.repo)
            url = links.commit_url(repo.git_url, commit) if repo is not None else None
            out.append(("commit", url or commit))
        return out

    def _fire(
        self,
        policy: PolicySpec,
        kind: AlertEvent,
        event: Event,
        now: float,
        title: str,
        text: str,
        *,
        sub: str = "",
        commit: str | None = None,
        run_id: str | None = None,
        fields: tuple[tuple[str, str], ...] = (),
    ) -> list[Notice]:
        key = "/".join(x for x in (policy.name, kind.value, event.location or "fleet", sub) if x)
        if kind is not E.PROMOTED and key in self.open:
            return []  # one alert per episode
        # The same problem may come back after it resolved: a new episode, a new message.
        instance = f"{key}@{next(self._seq)}"
        if kind is not E.PROMOTED:
            self.open[key] = Episode(
                key, policy.name, kind.value, event.location, iso(now), title,
                tuple(policy.channels),
                {"commit": commit or "", "run_id": run_id or "", "instance": instance},
            )  # fmt: skip
        state = State.INFO if kind is E.PROMOTED else State.FIRING
        return [self._notice(key, instance, policy, kind, event, now, state, title, text, commit,
                             run_id, fields)]  # fmt: skip

    def _notice(
        self,
        key: str,
        instance: str,
        policy: PolicySpec,
        kind: AlertEvent,
        event: Event,
        now: float,
        state: State,
        title: str,
        text: str,
        commit: str | None,
        run_id: str | None,
        fields: tuple[tuple[str, str], ...] = (),
    ) -> Notice:
        return Notice(
            episode=key,
            instance=instance,
            policy=policy.name,
            event=kind.value,
            state=state,
            title=title,
            text=text,
            location=event.location,
            repo=event.repo,
            env=event.env,
            channels=tuple(policy.channels),
            links=tuple(self._links(event, commit, run_id)),
            fields=fields,
            at=iso(now),
        )

    def _resolve(
        self,
        policy: PolicySpec,
        kind: AlertEvent,
        event: Event,
        now: float,
        text: str,
        sub: str = "",
        commit: str | None = None,
    ) -> list[Notice]:
        key = "/".join(x for x in (policy.name, kind.value, event.location or "fleet", sub) if x)
        episode = self.open.pop(key, None)
        if episode is None:
            return []
        title = f"Resolved: {episode.title}"
        run_id = episode.detail.get("run_id") or None
        instance = episode.detail.get("instance", key)
        return [self._notice(key, instance, policy, kind, event, now, State.RESOLVED, title, text,
                             commit, run_id)]  # fmt: skip

    # ---- events -----------------------------------------------------------------------
    def on_event(self, event: Event, now: float) -> list[Notice]:
        out: list[Notice] = []
        for policy in policies_for(self.fleet(), event):
            out += self._apply(policy, event, now)
        return out

    def _apply(self, policy: PolicySpec, event: Event, now: float) -> list[Notice]:
        k = event.kind
        if k is Kind.ATTEMPT:
            out = self._attempt(policy, event, now)
            if event.attempt is not None and event.attempt.outcome is Outcome.PUBLISHED:
                out += self._crash(policy, event, now)  # a new server serves: recovered
            return out
        if k in (Kind.CRASHED, Kind.RECOVERED):
            return self._crash(policy, event, now)
        if k is Kind.PROMOTED and matches(policy, E.PROMOTED, event):
            title = f"{event.location}: promoted {(event.commit or '')[:12]}"
            return self._fire(policy, E.PROMOTED, event, now, title, event.message,
                              commit=event.commit)  # fmt: skip
        if k in (Kind.RUN_STARTED, Kind.RUN_FAILED, Kind.RUN_CANCELED, Kind.RUN_SUCCEEDED):
            return self._run(policy, event, now)
        if k in (Kind.TICK_FAILED, Kind.TICK_SUCCEEDED) and matches(policy, E.TICK_FAILED, event):
            name = event.data.get("name") or event.data.get("tick") or ""
            if k is Kind.TICK_FAILED:
                title = f"{event.location}: tick of {name} failed"
                return self._fire(policy, E.TICK_FAILED, event, now, title, event.message, sub=name)
            return self._resolve(policy, E.TICK_FAILED, event, now, f"{name} ticks again", name)
        if k in (Kind.DAEMON_DOWN, Kind.DAEMON_UP) and matches(policy, E.DAEMON_DOWN, event):
            if k is Kind.DAEMON_DOWN:
                title = "the Dagster daemon is down"
                return self._fire(policy, E.DAEMON_DOWN, event, now, title, event.message)
            return self._resolve(policy, E.DAEMON_DOWN, event, now, "the daemon runs again")
        return []

    def _attempt(self, policy: PolicySpec, event: Event, now: float) -> list[Notice]:
        a = event.attempt
        if a is None:
            return []
        out: list[Notice] = []
        live = a.outcome in (Outcome.PUBLISHED, Outcome.UNCHANGED)
        commit = a.commit or ""
        if matches(policy, E.COMMIT_REJECTED, event):
            if a.outcome is Outcome.FAILED and not a.transient:
                title = f"{event.location} rejected {commit[:12]}"
                lines = [f"{a.subject or '(no subject)'} by {a.author or 'unknown'}"]
                lines.append(f"{a.reason or 'failed'}: {a.message or ''}".rstrip(": "))
                fields = (("commit", commit), ("author", a.author or ""),
                          ("subject", a.subject or ""), ("reason", a.reason or ""))  # fmt: skip
                out += self._fire(policy, E.COMMIT_REJECTED, event, now, title,
                                  "\n".join(lines), commit=a.commit, fields=fields)  # fmt: skip
            elif live:
                text = f"{event.location} serves {commit[:12]}"
                out += self._resolve(policy, E.COMMIT_REJECTED, event, now, text, commit=a.commit)
        if matches(policy, E.NOT_SERVING_TIP, event):
            key = (policy.name, event.location)
            if a.outcome is Outcome.FAILED:
                pending = self._tip.get(key)
                if pending is None:
                    self._tip[key] = _Pending(policy, event, now)
                else:  # keep when the trouble began; show the newest attempt
                    self._tip[key] = _Pending(policy, event, pending.since)
            elif live:
                self._tip.pop(key, None)
                text = f"{event.location} serves {commit[:12]}"
                out += self._resolve(policy, E.NOT_SERVING_TIP, event, now, text, commit=a.commit)
        return out

    def _crash(self, policy: PolicySpec, event: Event, now: float) -> list[Notice]:
        if not matches(policy, E.CRASH_LOOP, event):
            return []
        assert policy.minutes is not None and policy.crashes is not None  # validated
        key = (policy.name, event.location)
        episode = f"{policy.name}/{E.CRASH_LOOP.value}/{event.location}"
        if event.kind is not Kind.CRASHED:  # RECOVERED, or a publish (a new server serves)
            if episode in self.open:
                self._recovered[episode] = (now, policy, event)
            return []
        self._recovered.pop(episode, None)
        times = self._crashes.setdefault(key, deque())
        times.append(now)
        while times and times[0] < now - policy.minutes * 60:
            times.popleft()
        if len(times) < policy.crashes:
            return []
        title = f"{event.location}: code server crash loop"
        text = f"{len(times)} crashes within {policy.minutes:g} minutes. Last: {event.message}"
        return self._fire(policy, E.CRASH_LOOP, event, now, title, text, commit=event.commit)

    def _run(self, policy: PolicySpec, event: Event, now: float) -> list[Notice]:
        out: list[Notice] = []
        job = event.data.get("job", "")
        run_id = event.data.get("run_id", "")
        k = event.kind
        if k is Kind.RUN_STARTED and matches(policy, E.RUN_LONGER_THAN, event):
            self._runs[(policy.name, run_id)] = _Pending(policy, event, now, run_id)
        if k is not Kind.RUN_STARTED and matches(policy, E.RUN_LONGER_THAN, event):
            self._runs.pop((policy.name, run_id), None)
            text = f"run {run_id[:8]} of {job} ended ({k.value.removeprefix('run_')})"
            out += self._resolve(policy, E.RUN_LONGER_THAN, event, now, text, run_id)
        for kind, failed in ((E.RUN_FAILED, Kind.RUN_FAILED), (E.RUN_CANCELED, Kind.RUN_CANCELED)):
            if not matches(policy, kind, event):
                continue
            if k is failed:
                word = "failed" if kind is E.RUN_FAILED else "was canceled"
                title = f"{event.location}: {job} {word}"
                text = event.message or f"run {run_id}"
                out += self._fire(policy, kind, event, now, title, text, sub=job, run_id=run_id,
                                  commit=event.commit)  # fmt: skip
            elif k is Kind.RUN_SUCCEEDED:
                text = f"{job} succeeded (run {run_id[:8]})"
                out += self._resolve(policy, kind, event, now, text, job)
        return out

    # ---- time -------------------------------------------------------------------------
    def tick(self, now: float) -> list[Notice]:
        """Episodes that only time opens or closes: not_serving_tip, run_longer_than,
        and the quiet period that resolves a crash loop."""
        out: list[Notice] = []
        for p in list(self._tip.values()):
            assert p.policy.minutes is not None
            if now - p.since >= p.policy.minutes * 60:
                a = p.event.attempt
                commit = a.commit if a else p.event.commit
                title = f"{p.event.location} is not serving {(commit or '')[:12]}"
                why = f"{a.reason}: {a.message}" if a and a.reason else "not live yet"
                text = f"not live for {p.policy.minutes:g} minutes. Last attempt: {why}"
                out += self._fire(p.policy, E.NOT_SERVING_TIP, p.event, now, title, text,
                                  commit=commit)  # fmt: skip
        for key, p in list(self._runs.items()):
            assert p.policy.minutes is not None
            if now - p.since >= p.policy.minutes * 60:
                job = p.event.data.get("job", "")
                title = f"{p.event.location}: {job} has run for over {p.policy.minutes:g} minutes"
                out += self._fire(p.policy, E.RUN_LONGER_THAN, p.event, now, title,
                                  f"run {p.sub}", sub=p.sub, run_id=p.sub)  # fmt: skip
                del self._runs[key]  # the episode stays open until the run ends
        for episode, (at, policy, event) in list(self._recovered.items()):
            if now - at >= policy.quiet_minutes * 60:
                del self._recovered[episode]
                self._crashes.pop((policy.name, event.location), None)
                text = f"serving again, no crash for {policy.quiet_minutes:g} minutes"
                out += self._resolve(policy, E.CRASH_LOOP, event, now, text)
        return out

    def episodes(self) -> list[Episode]:
        return sorted(self.open.values(), key=lambda e: (e.opened, e.key))
