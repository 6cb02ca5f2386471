"""The warm parent's protocol on its own (dagfleet.runtime.warm <-> dagfleet_runtime.warm):
a zygote in this project's Python forks processes that run Dagster's CLI with the
environment, directory and log they were given, reports how each exited, and its
children are looked at directly once the zygote itself is gone."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from dagfleet.runtime.processes import PidRegistry
from dagfleet.runtime.warm import WarmPool
from dagfleet.venvs.builder import PythonEnv


@pytest.fixture
def pool(tmp_path: Path):
    pool = WarmPool(PidRegistry(tmp_path / "pids", "warm-test"), tmp_path / "logs", "warm-test")
    yield pool
    pool.close()


def this_env() -> PythonEnv:
    return PythonEnv(Path(sys.prefix), "this-env")


def start(pool: WarmPool, tmp_path: Path, args: list[str], env: dict[str, str] | None = None):
    log = tmp_path / "child.log"
    child = pool.start(
        this_env(),
        "probe",
        args,
        tmp_path,
        {"PATH": os.environ.get("PATH", ""), **(env or {})},
        log,
        {"python_file": None, "module_name": None, "package_name": None},
        tmp_path / "probe.fork",
    )
    assert child is not None, (tmp_path / "logs" / "warm-parents.log").read_text()
    return child, log


def test_forked_cli_exits_and_its_status_is_reported(pool: WarmPool, tmp_path: Path) -> None:
    ok, log = start(pool, tmp_path, ["--version"])
    assert ok.proc.wait(60) == 0
    assert "dagster" in log.read_text().lower()  # its output went to its own log
    assert "(forked)" in log.read_text()

    bad, _ = start(pool, tmp_path, ["no-such-command"])
    assert bad.proc.wait(60) == 2  # click's usage error, reported by the zygote


def test_a_forked_server_sees_only_its_environment(pool: WarmPool, tmp_path: Path) -> None:
    script = tmp_path / "defs.py"
    script.write_text(
        "import os\n"
        "from dagster import Definitions\n"
        "print('SEEN', os.environ.get('ONLY_HERE'), os.environ.get('HOME'), os.getcwd())\n"
        "defs = Definitions()\n"
    )
    child, log = start(
        pool,
        tmp_path,
        ["definitions", "validate", "-f", str(script)],
        {"ONLY_HERE": "yes"},
    )
    assert child.proc.wait(120) == 0, log.read_text()
    seen = [line for line in log.read_text().splitlines() if line.startswith("SEEN")]
    assert seen and seen[0] == f"SEEN yes None {tmp_path}"


def test_children_outlive_their_zygote(pool: WarmPool, tmp_path: Path) -> None:
    defs = tmp_path / "defs.py"
    defs.write_text("from dagster import Definitions\ndefs = Definitions()\n")
    grpc = ["api", "grpc", "--socket", str(tmp_path / "s.sock"), "-f", str(defs)]
    child, _ = start(pool, tmp_path, grpc)
    zygote = next(iter(pool._zygotes.values()))
    zygote.proc.kill()
    zygote.proc.wait(10)
    assert child.alive()
    os.kill(child.pid, 9)
    assert child.proc.wait(30) == -1  # seen gone directly; no exit status without the zygote


def test_an_env_without_the_runtime_starts_cold_without_retrying(
    pool: WarmPool, tmp_path: Path
) -> None:
    """A Python without dagster (or dagfleet_runtime) cannot be a warm parent: the pool says
    so (the caller starts the server cold) and does not start another zygote each time."""
    import subprocess

    venv = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    bare = PythonEnv(venv, "bare")
    target = {"python_file": None, "module_name": None, "package_name": None}
    args = (["--version"], tmp_path, {}, tmp_path / "bare.log", target, tmp_path / "b.fork")
    assert pool.start(bare, "probe", *args) is None
    first = pool._zygotes["bare"].proc.pid
    assert pool.start(bare, "probe", *args) is None
    assert pool._zygotes["bare"].proc.pid == first
