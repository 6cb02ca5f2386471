"""The narrow patches warm forks rely on, against the installed Dagster: the multiprocess
executor's default start method becomes the forkserver only in a process whose forkserver
runs (and never over a job's own choice), and the webserver/daemon watch is paced."""

from __future__ import annotations

from collections.abc import Iterator

import dagfleet_runtime.warm as warm
import pytest
from dagster._core.execution.retries import RetryMode
from dagster._core.executor.multiprocess import MultiprocessExecutor

from dagfleet.runtime import paced


@pytest.fixture
def patched() -> Iterator[None]:
    warm._patch()
    try:
        yield
    finally:
        warm._FORKS_READY = False


def test_executor_default_is_untouched_without_a_forkserver(patched: None) -> None:
    assert (
        MultiprocessExecutor(retries=RetryMode.DISABLED, max_concurrent=2)._start_method == "spawn"
    )


def test_executor_default_becomes_the_forkserver(patched: None) -> None:
    warm._FORKS_READY = True
    executor = MultiprocessExecutor(retries=RetryMode.DISABLED, max_concurrent=2)
    assert executor._start_method == "forkserver"
    assert executor._explicit_forkserver_preload == []


def test_a_jobs_start_method_is_kept(patched: None) -> None:
    warm._FORKS_READY = True
    executor = MultiprocessExecutor(
        retries=RetryMode.DISABLED, max_concurrent=2, start_method="spawn"
    )
    assert executor._start_method == "spawn"


def test_patch_is_applied_once(patched: None) -> None:
    first = MultiprocessExecutor.__init__
    warm._patch()
    assert MultiprocessExecutor.__init__ is first


@pytest.mark.parametrize("program", paced.PROGRAMS)
def test_the_watch_is_paced(program: str) -> None:
    from dagster._daemon import controller
    from dagster._grpc import server_watcher

    before = server_watcher.WATCH_INTERVAL, controller.RELOAD_WORKSPACE_INTERVAL
    try:
        assert paced.pace(program)
        assert paced.WATCH_SECONDS[program] == server_watcher.WATCH_INTERVAL
        reload = paced.RELOAD_SECONDS if program == "dagster-daemon" else before[1]
        assert reload == controller.RELOAD_WORKSPACE_INTERVAL
    finally:
        server_watcher.WATCH_INTERVAL, controller.RELOAD_WORKSPACE_INTERVAL = before
