"""Promotion refuses when the source's live commit is not Ready (issue 3).

The refusal depends only on what the source location's loop holds (its live
server and its status), so these tests build the real Reconciler over a real
fleet directory and a real `file://` remote, with loops that are never started:
each test puts the source loop in a known state through the status store, the
way a loop reports it. The CLI runs as a user runs it, against the real API app
serving that runtime. The happy path against a running fleet is in
tests/e2e/test_promotion.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from dagfleet.api import ApiServer, ApiSettings, create_app
from dagfleet.control import ControlError
from dagfleet.reconcile.location import LocationLoop
from dagfleet.reconcile.manager import Reconciler
from dagfleet.status import LocationStatus, Reason
from tests.e2e.conftest import with_asset
from tests.support.fleetproc import free_port, promote_demo, write_fleet
from tests.support.gitrepo import CodeRepo
from tests.support.runtime import idle_runtime

pytestmark = pytest.mark.integration

REFUSAL = "demo-A has no live, Ready commit to promote"


@pytest.fixture
def fleet_dir(tmp_path: Path, code_repo: CodeRepo) -> Path:
    fields = {"git_url": code_repo.url, "module_name": "demo.definitions"}
    return write_fleet(tmp_path / "fleet", {"demo": fields})


@pytest.fixture
def runtime(fleet_dir: Path) -> Reconciler:
    return idle_runtime(fleet_dir)


def put_loop(rt: Reconciler, location: str, status: LocationStatus, live: str | None) -> None:
    """A never-started loop for `location` that reads `status` from the store and serves `live`."""
    rt.ctx.store.write(status)
    spec = next(s for s in rt.ctx.fleet.locations() if s.name == location)
    loop = LocationLoop(rt.ctx, spec, debug_port=None)
    assert loop.status == status
    loop.live = SimpleNamespace(sha=live) if live is not None else None  # type: ignore[assignment]
    rt.loops[location] = loop


def status(
    location: str, commit: str | None, **conditions: tuple[bool, Reason, str]
) -> LocationStatus:
    repo, env = location.rsplit("-", 1)
    s = LocationStatus(location=location, repo=repo, env=env, commit=commit)
    for type_, (ok, reason, message) in conditions.items():
        s = s.with_condition(type_, "True" if ok else "False", reason, message)
    return s


def no_good_commit(rt: Reconciler, code_repo: CodeRepo) -> str:
    """A's only new commit failed to load and nothing ever loaded: no live server."""
    bad = code_repo.commit({"demo/definitions.py": "def broken(:\n"}, "broken")
    code_repo.push("A")
    put_loop(
        rt,
        "demo-A",
        status(
            "demo-A",
            None,
            Serving=(False, Reason.NO_GOOD_COMMIT, "no commit has loaded yet"),
            Synced=(False, Reason.DEFINITIONS_INVALID, f"{bad[:12]}: SyntaxError"),
        ),
        live=None,
    )
    return bad


def crashed(rt: Reconciler, code_repo: CodeRepo) -> str:
    """A's live commit loaded once, but its code server crashed and does not restart."""
    good = code_repo.commit({"demo/definitions.py": with_asset("a1")}, "a1")
    code_repo.push("A")
    message = f"code server for {good[:12]} exited with -9; restarting"
    put_loop(
        rt,
        "demo-A",
        status(
            "demo-A",
            good,
            Serving=(False, Reason.CODE_SERVER_CRASHED, message),
            Synced=(True, Reason.PUBLISHED, f"serving {good}"),
        ),
        live=good,
    )
    return good


@pytest.fixture
def api(fleet_dir: Path, runtime: Reconciler) -> Iterator[str]:
    server = ApiServer(
        create_app(ApiSettings(fleet_dir=fleet_dir), runtime), "127.0.0.1", free_port()
    )
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.mark.parametrize("state", [no_good_commit, crashed], ids=["no-good-commit", "crashed"])
def test_not_ready_source_is_refused(
    runtime: Reconciler, code_repo: CodeRepo, fleet_dir: Path, api: str, state: object
) -> None:
    b_before = code_repo.tip("B")
    a_tip = state(runtime, code_repo)  # type: ignore[operator]
    assert not runtime.loops["demo-A"].status.ready

    with pytest.raises(ControlError) as refused:
        runtime.promote("demo", "A", "B", merge=False)
    assert refused.value.status_code == 409
    assert REFUSAL in str(refused.value) and "dagfleet status" in str(refused.value)

    result = promote_demo(api, fleet_dir)
    assert result.returncode != 0
    said = " ".join(result.stderr.split())  # Rich wraps long lines
    assert f"409: {REFUSAL}" in said, result.stderr
    assert result.stdout == ""

    assert code_repo.tip("B") == b_before
    assert code_repo.tip("A") == a_tip  # nothing was pushed anywhere


def test_ready_source_is_promoted(runtime: Reconciler, code_repo: CodeRepo) -> None:
    """The control: the same set-up with A Ready promotes A's live commit."""
    good = crashed(runtime, code_repo)
    put_loop(
        runtime,
        "demo-A",
        status(
            "demo-A",
            good,
            Serving=(True, Reason.CODE_SERVER_RUNNING, f"serving {good}"),
            Synced=(True, Reason.PUBLISHED, f"serving {good}"),
        ),
        live=good,
    )
    outcome = runtime.promote("demo", "A", "B", merge=False)
    assert (outcome.commit, outcome.target_branch, outcome.merged) == (good, "B", False)
    assert code_repo.tip("B") == good
