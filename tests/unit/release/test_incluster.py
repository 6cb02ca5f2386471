"""The in-cluster release queue and controller (release/incluster.py): one job at a time,
a waiting job absorbs repeats, pushes queue the environments following the branch, the
deploy repository's credentials come from the Secret's files, and without a deploy
repository everything that acts answers 503 naming the setting."""

from __future__ import annotations

import fcntl
import os
import stat
import threading
from pathlib import Path

import pytest

from dagfleet.control import ControlError
from dagfleet.offline import OfflineController
from dagfleet.release import incluster as ic
from dagfleet.release.releaser import ReleaseError, Report
from dagfleet.status import LocationStatus, StatusStore
from dagfleet.status.conditions import ConditionType, Reason
from dagfleet.status.liveness import lock_path
from tests.support.fleetproc import write_fleet

URL = "https://git.example.com/data/demo.git"


class Recorder:
    """A job runner that records the jobs and holds each until released."""

    def __init__(self, hold: bool = False) -> None:
        self.jobs: list[ic.Job] = []
        self.gate = threading.Event()
        self.started = threading.Event()
        if not hold:
            self.gate.set()

    def __call__(self, job: ic.Job) -> Report:
        self.jobs.append(job)
        self.started.set()
        assert self.gate.wait(30), "never released"
        if job.repo == "explodes":
            raise ReleaseError("deploy repo unreachable")
        return Report([])


def quiet(line: str) -> None:
    """The queue's log, unused here."""


def test_one_job_at_a_time_and_a_waiting_job_absorbs_repeats() -> None:
    runner = Recorder(hold=True)
    queue = ic.ReleaseQueue(runner, log=quiet)
    try:
        a, b = ic.Job("demo", "A"), ic.Job("demo", "B")
        first = queue.submit(a)
        assert runner.started.wait(30)
        # While A runs: B waits; B again is the same waiting job; A again waits too
        # (the running one may have read an older tip).
        waiting_b = queue.submit(b)
        assert queue.submit(b) is waiting_b
        again_a = queue.submit(a)
        assert again_a is not first
        running, pending = queue.snapshot()
        assert running == a and pending == [b, a]
        runner.gate.set()
        assert queue.wait_idle(30)
        assert runner.jobs == [a, b, a]
        assert all(f.result(5).outcomes == [] for f in (first, waiting_b, again_a))
    finally:
        queue.stop()


def test_a_failing_job_is_reported_and_the_worker_goes_on() -> None:
    lines: list[str] = []
    queue = ic.ReleaseQueue(Recorder(), log=lines.append)
    try:
        failed = queue.submit(ic.Job("explodes", "A"))
        ok = queue.submit(ic.Job("demo", "A"))
        with pytest.raises(ReleaseError, match="unreachable"):
            failed.result(30)
        assert ok.result(30).outcomes == []
        assert any("release explodes to A failed: deploy repo unreachable" in x for x in lines)
    finally:
        queue.stop()


def fleet_dir(tmp_path: Path) -> Path:
    return write_fleet(
        tmp_path / "fleet",
        {
            "demo": {"git_url": URL, "module_name": "demo.defs"},
            "pinned": {"git_url": URL, "module_name": "p.defs", "pins": {"A": "v1"}},
            "other": {"git_url": "https://git.example.com/x.git", "module_name": "x.defs"},
        },
    )


def test_a_push_queues_the_environments_whose_locations_follow_the_branch(
    tmp_path: Path,
) -> None:
    runner = Recorder()
    queue = ic.ReleaseQueue(runner, log=quiet)
    try:
        controller = ic.InClusterController(OfflineController(fleet_dir(tmp_path)), queue)
        assert controller.queues_pushes is True
        # Another spelling of the same URL; pinned-A does not follow the branch.
        hit = controller.request_sync_for_push("https://git.example.com/data/demo", "A")
        assert hit == ["demo-A"]
        assert controller.request_sync_for_push(URL, "B") == ["demo-B", "pinned-B"]
        assert controller.request_sync_for_push(URL, "main") == []
        assert queue.wait_idle(30)
        assert runner.jobs == [ic.Job("demo", "A"), ic.Job("demo", "B"), ic.Job("pinned", "B")]
    finally:
        queue.stop()


def test_without_a_deploy_repo_everything_that_acts_names_the_setting(tmp_path: Path) -> None:
    controller = ic.InClusterController(OfflineController(fleet_dir(tmp_path)), None)
    assert controller.queues_pushes is False
    for act in (
        lambda: controller.request_sync_for_push(URL, "A"),
        lambda: controller.sync("demo", None, True),
        lambda: controller.promote("demo", "A", "B", False),
    ):
        with pytest.raises(ControlError) as caught:
            act()
        assert caught.value.status_code == 503
        assert "DAGFLEET_DEPLOY_REPO" in str(caught.value) and "deploy_repo" in str(caught.value)
    assert ic.start(controller.base, tmp_path / "fleet", {}).queue is None


def status(commit: str, at: str) -> LocationStatus:
    st = LocationStatus(location="demo-A", repo="demo", env="A", commit=commit)
    st = st.with_condition(ConditionType.SYNCED, "True", Reason.PUBLISHED, "ok")
    synced = st.conditions[0].model_copy(update={"last_transition": at})
    return st.model_copy(update={"conditions": [synced]})


def test_the_fresh_status_wins_until_the_recorded_one_is_newer(tmp_path: Path) -> None:
    root = fleet_dir(tmp_path)
    base = OfflineController(root)
    # serve.py holds the fleet's lock, so recorded statuses are shown as recorded.
    base.layout.root.mkdir(parents=True, exist_ok=True)
    lock = os.open(lock_path(base.layout), os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    store = StatusStore(base.layout.status)
    store.write(status("a" * 40, "2026-01-01T10:00:00+00:00"))
    fresh = status("b" * 40, "2026-01-01T11:00:00+00:00")
    queue = ic.ReleaseQueue(
        lambda job: Report([], None, {"demo-A": fresh.model_dump_json()}), log=quiet
    )
    try:
        controller = ic.InClusterController(base, queue)
        queue.submit(ic.Job("demo", "A")).result(30)
        (shown,) = [s for s in controller.statuses() if s.location == "demo-A"]
        assert shown.commit == "b" * 40  # just released here, not applied by Flux yet
        store.write(status("c" * 40, "2026-01-01T12:00:00+00:00"))  # a newer one, from CI
        (shown,) = [s for s in controller.statuses() if s.location == "demo-A"]
        assert shown.commit == "c" * 40
    finally:
        queue.stop()
        os.close(lock)


def test_credentials_come_from_the_secret_files(tmp_path: Path) -> None:
    secret, work = tmp_path / "secret", tmp_path / "work"
    secret.mkdir()
    assert ic.credentials_from_dir(secret, work) is None
    (secret / "token").write_text("t0ken\n")
    (secret / "username").write_text("x-access-token\n")
    creds = ic.credentials_from_dir(secret, work)
    assert creds is not None and creds.kind == "https" and creds.user == "x-access-token"
    assert creds.token is not None and creds.token.from_file == str(secret / "token")
    (secret / "ssh").write_text("KEY\n")
    with pytest.raises(ReleaseError, match="both `token` and `ssh`"):
        ic.credentials_from_dir(secret, work)
    (secret / "token").unlink()
    (secret / "known_hosts").write_text("host key\n")
    (secret / "ssh").chmod(0o440)  # as a Secret volume with an fsGroup makes it
    creds = ic.credentials_from_dir(secret, work)
    assert creds is not None and creds.kind == "ssh"
    key = Path(str(creds.ssh_key_file))
    assert key.parent == work and key.read_text() == "KEY\n"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600  # ssh refuses group-readable keys
    assert creds.ssh_known_hosts_file == str(secret / "known_hosts")
    assert ic.credentials_from_dir(secret, work) is not None  # a restart copies it again


def test_the_deploy_repo_from_the_environment(tmp_path: Path) -> None:
    assert ic.deploy_from_env({}, tmp_path) is None
    deploy = ic.deploy_from_env(
        {ic.ENV_URL: "ssh://git@h/d.git", ic.ENV_PATH: "/clusters/prod/"}, tmp_path
    )
    assert deploy is not None
    assert (deploy.url, deploy.branch, deploy.path) == (
        "ssh://git@h/d.git",
        "main",
        "clusters/prod",
    )
    with pytest.raises(ReleaseError, match="DAGFLEET_DEPLOY_PATH"):
        ic.deploy_from_env({ic.ENV_URL: "ssh://git@h/d.git", ic.ENV_PATH: "a/../.."}, tmp_path)
