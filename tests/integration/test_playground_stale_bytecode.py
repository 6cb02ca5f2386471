"""A playground file saved twice within one second, with the same length, is served in
its new version: Python's bytecode cache would take it for the old one (it compares
size and whole-second mtime). Real PlaygroundLoop, real code servers."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from dagfleet.reconcile.playground import PlaygroundLoop, files_digest
from tests.support.fleetproc import wait_for, write_fleet
from tests.support.runtime import idle_runtime

pytestmark = pytest.mark.integration

V1 = "from dagster import asset\n\n\n@asset\ndef first() -> int:\n    return 1\n"
V2 = 'raise RuntimeError("second version")\n'
V2 += "#" * (len(V1) - len(V2) - 1) + "\n"  # the same length as V1


@pytest.fixture
def loop(tmp_path: Path) -> Iterator[PlaygroundLoop]:
    fleet_dir = write_fleet(
        tmp_path / "fleet", {}, environments=[{"name": "A", "branch": "A", "playground": True}]
    )
    runtime = idle_runtime(fleet_dir)
    (spec,) = runtime.ctx.fleet.locations()
    playground = PlaygroundLoop(runtime.ctx, spec, None)
    playground.directory.mkdir(parents=True, exist_ok=True)
    (playground.directory / "mine.py").write_text(V1)
    playground.start()
    try:
        yield playground
    finally:
        playground.stop()
        runtime.ctx.stop_servers(grace=2.0)


def wait_served(loop: PlaygroundLoop, digest: str, timeout: float = 120) -> None:
    wait_for(lambda: loop.status.commit == digest, timeout, f"the playground at {digest[:12]}")


def test_a_same_second_same_size_save_is_served(loop: PlaygroundLoop) -> None:
    path = loop.directory / "mine.py"
    wait_served(loop, files_digest(loop.directory))
    assert loop.status.condition("Synced").status == "True", loop.status
    assert list((loop.directory / "__pycache__").glob("mine.*.pyc")), "v1 was cached"

    before = path.stat()
    assert len(V2) == before.st_size
    path.write_text(V2)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))  # within the same second
    wait_served(loop, files_digest(loop.directory))
    synced = loop.status.condition("Synced")
    assert synced.status == "False" and "second version" in synced.message, synced
