"""The alert rules with synthetic events and a synthetic clock: episodes, dedupe, resolve."""

from __future__ import annotations

import json
from typing import Any

import pytest

from dagfleet.alerts.model import State
from dagfleet.alerts.rules import Rules
from dagfleet.events import Attempt, Event, Kind, Outcome
from dagfleet.spec.models import Fleet, FleetSpec, RepoSpec

WEB = "http://dagster.test"
T0 = 1_800_000_000.0


def fleet(policies: list[dict[str, Any]], repo_policies: list[dict[str, Any]] = ()) -> Fleet:  # type: ignore[assignment]
    spec = FleetSpec.model_validate(
        {
            "environments": [{"name": "A"}, {"name": "prod"}],
            "alerts": {
                "channels": {"ops": {"slack_webhook": {"url": {"from_env": "HOOK"}}}},
                "policies": policies,
            },
        }
    )
    repos = {
        "demo": RepoSpec.model_validate(
            {"name": "demo", "git_url": "https://github.com/acme/demo.git"}
            | ({"alerts": {"policies": list(repo_policies)}} if repo_policies else {})
        ),
        "other": RepoSpec.model_validate({"name": "other", "git_url": "/srv/git/other"}),
    }
    return Fleet(root="/tmp/fleet", spec=spec, repos=repos)


def rules(*policies: dict[str, Any], repo_policies: list[dict[str, Any]] = ()) -> Rules:  # type: ignore[assignment]
    f = fleet(list(policies), list(repo_policies))
    return Rules(lambda: f, lambda: WEB)


def policy(events: list[str], **extra: Any) -> dict[str, Any]:
    return {"name": "p", "events": events, "channels": ["ops"], **extra}


def attempt(
    outcome: Outcome, commit: str, transient: bool = False, location: str = "demo-A"
) -> Event:
    repo, env = location.rsplit("-", 1)
    a = Attempt(
        location=location,
        repo=repo,
        env=env,
        commit=commit,
        previous="0" * 40,
        started="2027-01-01T00:00:00+00:00",
        finished="2027-01-01T00:00:05+00:00",
        outcome=outcome,
        reason="DefinitionsInvalid" if outcome is Outcome.FAILED else None,
        message="ImportError: no module named nope" if outcome is Outcome.FAILED else None,
        transient=transient,
        author="Ada <ada@example.com>",
        subject="break things",
    )
    return Event(Kind.ATTEMPT, location, repo, env, commit, a.message or "", a)


def run(kind: Kind, run_id: str, job: str = "etl", tags: dict[str, str] | None = None) -> Event:
    data = {"run_id": run_id, "job": job, "tags": json.dumps(tags or {}), "location": "demo-A"}
    return Event(kind, "demo-A", "demo", "A", "e" * 40, data=data)


BAD, GOOD = "b" * 40, "c" * 40


def test_rejected_commit_alerts_once_and_resolves_on_publish() -> None:
    r = rules(policy(["commit_rejected"]))
    [fired] = r.on_event(attempt(Outcome.FAILED, BAD), T0)
    assert fired.state is State.FIRING and fired.episode == "p/commit_rejected/demo-A"
    assert "bbbbbbbbbbbb" in fired.title and "Ada" in fired.text and "break things" in fired.text
    assert "ImportError" in fired.text
    assert ("commit", f"https://github.com/acme/demo/commit/{BAD}") in fired.links
    assert ("location", f"{WEB}/locations/demo-A") in fired.links
    assert r.on_event(attempt(Outcome.FAILED, BAD), T0 + 5) == []  # same episode: no repeat
    assert r.on_event(attempt(Outcome.FAILED, "d" * 40), T0 + 9) == []
    [resolved] = r.on_event(attempt(Outcome.PUBLISHED, GOOD), T0 + 60)
    assert resolved.state is State.RESOLVED and resolved.episode == fired.episode
    assert r.on_event(attempt(Outcome.PUBLISHED, GOOD), T0 + 61) == []
    assert r.episodes() == []


def test_a_problem_that_comes_back_is_a_new_episode_with_new_messages() -> None:
    r = rules(policy(["commit_rejected"]))
    [first] = r.on_event(attempt(Outcome.FAILED, BAD), T0)
    [first_ok] = r.on_event(attempt(Outcome.PUBLISHED, GOOD), T0 + 1)
    [second] = r.on_event(attempt(Outcome.FAILED, "d" * 40), T0 + 2)
    [second_ok] = r.on_event(attempt(Outcome.PUBLISHED, "e" * 40), T0 + 3)
    assert first.episode == second.episode
    keys = [n.dedupe_key for n in (first, first_ok, second, second_ok)]
    assert len(set(keys)) == 4
    assert first.instance == first_ok.instance != second.instance == second_ok.instance


def test_transient_failures_are_not_rejections() -> None:
    r = rules(policy(["commit_rejected"]))
    assert r.on_event(attempt(Outcome.FAILED, BAD, transient=True), T0) == []


def test_not_serving_tip_after_minutes_including_transient_failures() -> None:
    r = rules(policy(["not_serving_tip"], minutes=10))
    assert r.on_event(attempt(Outcome.FAILED, BAD, transient=True), T0) == []
    assert r.tick(T0 + 9 * 60) == []
    assert r.on_event(attempt(Outcome.FAILED, BAD, transient=True), T0 + 9 * 60) == []
    [fired] = r.tick(T0 + 10 * 60)
    assert fired.state is State.FIRING and "not serving" in fired.title
    assert r.tick(T0 + 20 * 60) == []
    [resolved] = r.on_event(attempt(Outcome.PUBLISHED, BAD), T0 + 21 * 60)
    assert resolved.state is State.RESOLVED


def test_not_serving_tip_cleared_before_the_deadline_sends_nothing() -> None:
    r = rules(policy(["not_serving_tip"], minutes=10))
    r.on_event(attempt(Outcome.FAILED, BAD, transient=True), T0)
    assert r.on_event(attempt(Outcome.PUBLISHED, BAD), T0 + 60) == []
    assert r.tick(T0 + 3600) == []


def crash(kind: Kind = Kind.CRASHED) -> Event:
    return Event(kind, "demo-A", "demo", "A", GOOD, "exited with -9")


def test_crash_loop_needs_enough_crashes_in_the_window() -> None:
    r = rules(policy(["crash_loop"], crashes=3, minutes=5, quiet_minutes=2))
    assert r.on_event(crash(), T0) == []
    assert r.on_event(crash(), T0 + 60) == []
    assert r.on_event(crash(), T0 + 7 * 60) == []  # the first two fell out of the window
    assert r.on_event(crash(), T0 + 8 * 60) == []
    [fired] = r.on_event(crash(), T0 + 9 * 60)
    assert fired.state is State.FIRING and "3 crashes" in fired.text
    assert r.on_event(crash(), T0 + 9 * 60 + 10) == []  # still the same episode


def test_crash_loop_resolves_after_a_quiet_period_since_recovery() -> None:
    r = rules(policy(["crash_loop"], crashes=2, minutes=5, quiet_minutes=2))
    r.on_event(crash(), T0)
    assert len(r.on_event(crash(), T0 + 10)) == 1
    r.on_event(crash(Kind.RECOVERED), T0 + 20)
    assert r.tick(T0 + 20 + 119) == []
    r.on_event(crash(), T0 + 140)  # crashed again: the quiet period starts over
    r.on_event(crash(Kind.RECOVERED), T0 + 150)
    assert r.tick(T0 + 150 + 119) == []
    [resolved] = r.tick(T0 + 150 + 120)
    assert resolved.state is State.RESOLVED
    assert r.episodes() == []


def test_a_publish_after_a_crash_loop_counts_as_recovery() -> None:
    r = rules(policy(["crash_loop"], crashes=2, minutes=5, quiet_minutes=1))
    r.on_event(crash(), T0)
    assert len(r.on_event(crash(), T0 + 10)) == 1
    assert r.on_event(attempt(Outcome.PUBLISHED, GOOD), T0 + 20) == []
    [resolved] = r.tick(T0 + 80)
    assert resolved.state is State.RESOLVED and resolved.event == "crash_loop"


def test_failed_runs_are_one_episode_per_job_resolved_by_a_success() -> None:
    r = rules(policy(["run_failed", "run_canceled"]))
    [fired] = r.on_event(run(Kind.RUN_FAILED, "r1"), T0)
    assert fired.episode == "p/run_failed/demo-A/etl"
    assert ("run", f"{WEB}/runs/r1") in fired.links
    assert ("commit", f"https://github.com/acme/demo/commit/{'e' * 40}") in fired.links
    assert r.on_event(run(Kind.RUN_FAILED, "r2"), T0 + 1) == []
    [other] = r.on_event(run(Kind.RUN_FAILED, "r3", job="load"), T0 + 2)
    assert other.episode.endswith("/load")
    [canceled] = r.on_event(run(Kind.RUN_CANCELED, "r4"), T0 + 3)
    assert canceled.event == "run_canceled"
    resolved = r.on_event(run(Kind.RUN_SUCCEEDED, "r5"), T0 + 4)
    assert {n.episode for n in resolved} == {"p/run_failed/demo-A/etl", "p/run_canceled/demo-A/etl"}
    assert all(n.state is State.RESOLVED for n in resolved)
    assert [e.key for e in r.episodes()] == ["p/run_failed/demo-A/load"]


@pytest.mark.parametrize(
    ("jobs", "tags", "run_job", "run_tags", "alerts"),
    [
        (["etl*"], {}, "etl_daily", {}, True),
        (["etl*"], {}, "load", {}, False),
        ([], {"team": "data"}, "etl", {"team": "data"}, True),
        ([], {"team": "data"}, "etl", {"team": "web"}, False),
        ([], {"team": "d*"}, "etl", {"team": "data"}, True),
        ([], {"team": "data"}, "etl", {}, False),
    ],
)
def test_run_filters(
    jobs: list[str], tags: dict[str, str], run_job: str, run_tags: dict[str, str], alerts: bool
) -> None:
    r = rules(policy(["run_failed"], jobs=jobs, tags=tags))
    assert bool(r.on_event(run(Kind.RUN_FAILED, "r1", run_job, run_tags), T0)) is alerts


def test_run_longer_than_fires_on_the_timer_and_resolves_when_the_run_ends() -> None:
    r = rules(policy(["run_longer_than"], minutes=30))
    r.on_event(run(Kind.RUN_STARTED, "r1"), T0)
    r.on_event(run(Kind.RUN_STARTED, "r2"), T0)
    assert r.on_event(run(Kind.RUN_SUCCEEDED, "r2"), T0 + 60) == []  # ended in time: silent
    assert r.tick(T0 + 29 * 60) == []
    [fired] = r.tick(T0 + 30 * 60)
    assert fired.episode == "p/run_longer_than/demo-A/r1" and "30 minutes" in fired.title
    assert r.tick(T0 + 60 * 60) == []
    [resolved] = r.on_event(run(Kind.RUN_FAILED, "r1"), T0 + 61 * 60)
    assert resolved.state is State.RESOLVED


def test_ticks_and_the_daemon() -> None:
    r = rules(policy(["tick_failed", "daemon_down"]))
    tick = {"name": "hourly", "type": "schedule"}
    [fired] = r.on_event(Event(Kind.TICK_FAILED, "demo-A", "demo", "A", data=tick), T0)
    assert fired.episode == "p/tick_failed/demo-A/hourly"
    assert r.on_event(Event(Kind.TICK_FAILED, "demo-A", "demo", "A", data=tick), T0 + 1) == []
    [ok] = r.on_event(Event(Kind.TICK_SUCCEEDED, "demo-A", "demo", "A", data=tick), T0 + 2)
    assert ok.state is State.RESOLVED
    [down] = r.on_event(Event(Kind.DAEMON_DOWN, "", "", ""), T0)
    assert down.episode == "p/daemon_down/fleet"
    [up] = r.on_event(Event(Kind.DAEMON_UP, "", "", ""), T0 + 5)
    assert up.state is State.RESOLVED


def test_promotions_are_informational_each_its_own() -> None:
    r = rules(policy(["promoted"]))
    first = r.on_event(Event(Kind.PROMOTED, "demo-prod", "demo", "prod", BAD, "ff"), T0)
    second = r.on_event(Event(Kind.PROMOTED, "demo-prod", "demo", "prod", GOOD, "ff"), T0 + 1)
    assert [n.state for n in first + second] == [State.INFO, State.INFO]
    assert first[0].dedupe_key != second[0].dedupe_key
    assert r.episodes() == []


def test_scope_by_environment_repo_and_location_globs() -> None:
    r = rules(policy(["commit_rejected"], environments=["prod"], locations=["demo-*"]))
    assert r.on_event(attempt(Outcome.FAILED, BAD, location="demo-A"), T0) == []
    assert len(r.on_event(attempt(Outcome.FAILED, BAD, location="demo-prod"), T0)) == 1
    r = rules(policy(["commit_rejected"], repos=["other"]))
    assert r.on_event(attempt(Outcome.FAILED, BAD, location="demo-A"), T0) == []


def test_repo_policies_see_only_their_repo() -> None:
    r = rules(repo_policies=[policy(["commit_rejected"], name="mine")])
    [fired] = r.on_event(attempt(Outcome.FAILED, BAD, location="demo-A"), T0)
    assert fired.policy == "mine"
    assert r.on_event(attempt(Outcome.FAILED, BAD, location="other-A"), T0) == []


def test_a_commit_on_an_unknown_host_is_shown_as_its_sha() -> None:
    r = rules(policy(["commit_rejected"]))
    [fired] = r.on_event(attempt(Outcome.FAILED, BAD, location="other-A"), T0)
    assert ("commit", BAD) in fired.links
