"""The pinned code server's readiness probe (`launch.py --probe`) against real code servers.

`dagster api grpc-health-check` passes for a server whose definitions failed to load
(it serves the error); the probe must not, or a broken commit would become Ready and
the rolling update would retire the good pod.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from dagfleet.render.launcher import LAUNCHER_SOURCE
from tests.support.fleetproc import free_port, wait_for
from tests.support.gitrepo import TRIVIAL_DEFS

pytestmark = pytest.mark.integration

BROKEN_DEFS = "from dagster import Definitions\nraise RuntimeError('broken on purpose')\n"


@pytest.fixture
def code_server(tmp_path: Path) -> Iterator[Callable[[str], int]]:
    """Start `dagster code-server start` on a free port for a module's source; returns the port."""
    procs: list[subprocess.Popen[bytes]] = []
    ports: list[int] = []
    logs: list[Any] = []

    def start(source: str) -> int:
        work = tmp_path / f"code{len(procs)}"
        (work / "pkg").mkdir(parents=True)
        (work / "pkg" / "__init__.py").write_text("")
        (work / "pkg" / "defs.py").write_text(source)
        port = free_port()
        while port in ports:  # two servers never share a port
            port = free_port()
        ports.append(port)
        logs.append((tmp_path / f"server{port}.log").open("wb"))
        cmd = [
            sys.executable, "-m", "dagster", "code-server", "start", "--host", "127.0.0.1",
            "--port", str(port), "--module-name", "pkg.defs", "--working-directory", str(work),
        ]  # fmt: skip
        # A home each: two servers creating the same empty SQLite instance at once race
        # ("table run_tags already exists", seen under load as the good server's load error).
        home = tmp_path / f"home{len(procs)}"
        home.mkdir(exist_ok=True)
        env = {**os.environ, "DAGSTER_HOME": str(home)}
        procs.append(
            subprocess.Popen(
                cmd,
                cwd=work,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=logs[-1],
                start_new_session=True,
            )
        )
        return port

    yield start
    for proc in procs:
        os.killpg(proc.pid, signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    for log in logs:
        log.close()


def run(cmd: list[str], port: int) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DAGFLEET_PORT": str(port)}
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60, check=False)


def probe(launcher: Path, port: int) -> subprocess.CompletedProcess[str]:
    return run([sys.executable, str(launcher), "--probe"], port)


def health(port: int) -> int:
    cmd = [sys.executable, "-m", "dagster", "api", "grpc-health-check", "-p", str(port)]
    return run(cmd, port).returncode


def test_probe_passes_only_once_the_definitions_loaded(
    code_server: Callable[[str], int], tmp_path: Path
) -> None:
    launcher = tmp_path / "launch.py"
    launcher.write_text(LAUNCHER_SOURCE)
    down = free_port()
    assert probe(launcher, down).returncode == 1, "nobody listening is not Ready"

    good, broken = code_server(TRIVIAL_DEFS), code_server(BROKEN_DEFS)
    last: list[str] = []

    def ready() -> bool:
        result = probe(launcher, good)
        last[:] = [result.stderr]
        return result.returncode == 0

    try:
        wait_for(ready, 180, "the good server Ready")
    except AssertionError as err:
        log = (tmp_path / f"server{good}.log").read_text(errors="replace")[-2000:]
        raise AssertionError(f"{err}\nprobe: {last}\nserver: {log}") from err
    wait_for(lambda: health(broken) == 0, 120, "the broken server answering health checks")

    # The broken server is up and healthy by Dagster's own check, yet never Ready: while
    # it loads the probe fails, and once it answers with the load error too.
    def load_error() -> bool:
        result = probe(launcher, broken)
        assert result.returncode == 1, result.stderr
        return "broken on purpose" in result.stderr

    wait_for(load_error, 120, "the broken server answering with its load error")
    assert health(broken) == 0
