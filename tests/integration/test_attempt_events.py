"""Every sync attempt is published as an event with its commit, author, subject, the
seconds of each step and how it ended: what the publish history and alerts consume."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from dagfleet.events import Event, Kind, Outcome
from dagfleet.reconcile.location import LocationLoop
from dagfleet.status import LocationStatus
from tests.support.fleetproc import write_fleet
from tests.support.gitrepo import CodeRepo
from tests.support.runtime import idle_runtime

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def loop(code_repo: CodeRepo, tmp_path: Path) -> Iterator[tuple[LocationLoop, list[Event]]]:
    fleet_dir = write_fleet(
        tmp_path / "fleet",
        {"demo": {"git_url": code_repo.url, "module_name": "demo.definitions"}},
        environments=[{"name": "A", "branch": "A"}],
    )
    reconciler = idle_runtime(fleet_dir)
    events: list[Event] = []
    reconciler.ctx.events.subscribe(events.append)
    (spec,) = reconciler.ctx.fleet.locations()
    loop = LocationLoop(reconciler.ctx, spec, None)
    try:
        yield loop, events
    finally:
        loop.stop()
        reconciler.ctx.stop_servers(grace=2.0)


def test_attempts_carry_commit_author_steps_and_outcome(
    loop: tuple[LocationLoop, list[Event]], code_repo: CodeRepo
) -> None:
    location, events = loop
    # Observe every status the loop writes (it still goes to the real store).
    written: list[str] = []
    store_write = location.ctx.store.write

    def observe(status: LocationStatus) -> None:
        synced = status.condition("Synced")
        if synced is not None and synced.reason == "Progressing":
            written.append(synced.message)
        store_write(status)

    location.ctx.store.write = observe  # type: ignore[method-assign]
    first = location.sync_once(force=True)
    # Users see each step of the publish as it happens (`dagfleet` progress, status page).
    sha = code_repo.tip("A")[:12]
    assert [m for m in written if m.startswith(("installing", "loading"))] == [
        f"installing dependencies (uv) of {sha}",
        f"loading definitions of {sha}",
    ]
    assert first.error is None, first.error
    (published,) = [e for e in events if e.kind == Kind.ATTEMPT]
    attempt = published.attempt
    assert attempt is not None and attempt.outcome == Outcome.PUBLISHED
    assert attempt.commit == code_repo.tip("A") and attempt.subject == "initial"
    assert attempt.author == "test"
    steps = dict(attempt.steps)
    assert list(steps) == [
        "fetch",
        "checkout",
        "discover",
        "install",
        "build",
        "environment",
        "load",
    ]
    assert all(seconds >= 0 for seconds in steps.values()) and steps["install"] > 0

    # Polling the same commit is not an attempt: nothing new is published.
    location.sync_once()
    assert len([e for e in events if e.kind == Kind.ATTEMPT]) == 1

    broken = code_repo.commit(
        {"demo/definitions.py": "raise ImportError('no such thing')\n"}, "break it"
    )
    code_repo.push("A")
    outcome = location.sync_once()
    assert outcome.error and outcome.reason == "DefinitionsInvalid"
    rejected = [e for e in events if e.kind == Kind.ATTEMPT][-1].attempt
    assert rejected is not None and rejected.outcome == Outcome.FAILED
    assert rejected.commit == broken and rejected.subject == "break it"
    assert rejected.reason == "DefinitionsInvalid" and not rejected.transient
    assert rejected.message is not None and "ImportError" in rejected.message
    assert rejected.previous == attempt.commit
