"""The benches' process accounting (bench/_fleet.py) on real processes: a fleet's tree
includes grandchildren (a process forked by a warm parent is that parent's child) and
processes outside it that carry the fleet's DAGFLEET_STATE (reparented after a double
fork) with their own children; memory sums USS and PSS; CPU spent by a child that has
exited and been waited for still counts, in its parent's children times."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.support.benchload import load_bench
from tests.support.fleetproc import wait_for

_fleet = load_bench("_fleet")

# up -> a child -> a grandchild forked by that child (like a warm parent's code server)
TREE = textwrap.dedent(
    """
    import os, subprocess, sys, time
    forker = "import os, time\\nif os.fork() == 0:\\n    time.sleep(600)\\n    os._exit(0)\\n"
    subprocess.Popen([sys.executable, "-c", forker + "time.sleep(600)"])
    time.sleep(600)
    """
)

# forks a process that outlives it (reparented), which starts a child of its own whose
# environment no longer names the fleet
ORPHAN = textwrap.dedent(
    """
    import os, subprocess, sys, time
    if os.fork() == 0:
        env = {k: v for k, v in os.environ.items() if k != "DAGFLEET_STATE"}
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], env=env)
        time.sleep(600)
        os._exit(0)
    """
)

# waits for `go`, runs a child that burns 0.5 s of CPU, waits for it, writes `done`
BURNER = textwrap.dedent(
    """
    import os, subprocess, sys, time
    go, done = sys.argv[1], sys.argv[2]
    while not os.path.exists(go):
        time.sleep(0.05)
    burn = "import time\\nwhile time.process_time() < 0.5:\\n    pass"
    subprocess.run([sys.executable, "-c", burn], check=True)
    open(done, "w").close()
    time.sleep(600)
    """
)


@pytest.fixture
def groups() -> Iterator[list[int]]:
    """Process groups started by a test, killed whole at the end."""
    started: list[int] = []
    yield started
    for pgid in started:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)


def spawn(
    code: str, groups: list[int], *args: str, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *args], start_new_session=True, env=env or dict(os.environ)
    )
    groups.append(proc.pid)
    return proc


def tree_of(root: int, size: int) -> list[psutil.Process]:
    """The tree under `root` once it has `size` processes."""

    def grown() -> list[psutil.Process]:
        procs: list[psutil.Process] = _fleet.tree_processes([root])
        return procs if len(procs) == size else []

    found: list[psutil.Process] = wait_for(grown, 30, f"{size} processes under {root}")
    return found


def test_tree_includes_grandchildren(groups: list[int]) -> None:
    root = spawn(TREE, groups).pid
    procs = tree_of(root, 3)
    by_pid = {p.pid: p for p in procs}
    child = next(p for p in procs if p.ppid() == root)
    grandchild = next(p for p in procs if p.pid not in (root, child.pid))
    assert set(by_pid) == {root, child.pid, grandchild.pid}
    assert grandchild.ppid() == child.pid  # not up's own child


def test_fleet_tree_adds_reparented_processes_and_their_children(
    groups: list[int], tmp_path: Path
) -> None:
    state = tmp_path / ".dagfleet"
    root = spawn(TREE, groups).pid
    launcher = spawn(ORPHAN, groups, env={**os.environ, "DAGFLEET_STATE": str(state)})
    launcher.wait(30)  # its forked child lives on, reparented

    def orphans() -> list[psutil.Process]:
        found = [p for p in psutil.process_iter() if _in_group(p, launcher.pid)]
        return found if len(found) == 2 else []

    tree_of(root, 3)
    outside = wait_for(orphans, 30, "the reparented process and its child")
    assert all(p.ppid() != launcher.pid for p in outside if p.environ().get("DAGFLEET_STATE"))
    tree = {p.pid for p in _fleet.fleet_tree(root, state)}
    assert {p.pid for p in _fleet.tree_processes([root])} <= tree
    assert {p.pid for p in outside} <= tree
    assert len(tree) == 5
    # without the state, only up's own tree
    assert {p.pid for p in _fleet.fleet_tree(root, tmp_path / "other")} == {
        p.pid for p in _fleet.tree_processes([root])
    }


def _in_group(proc: psutil.Process, pgid: int) -> bool:
    try:
        return os.getpgid(proc.pid) == pgid
    except OSError:
        return False


def test_memory_totals_sum_uss_and_pss(groups: list[int]) -> None:
    procs = tree_of(spawn(TREE, groups).pid, 3)
    got = _fleet.memory_totals(procs)
    print("memory of 3 sleeping Pythons:", got)
    assert got["processes"] == 3
    assert 0 < got["uss_mib"] <= got["pss_mib"] <= got["rss_mib"]
    one = _fleet.memory_totals(procs[:1])
    assert one["processes"] == 1 and one["uss_mib"] < got["uss_mib"]


def test_cpu_of_a_child_waited_for_stays_counted(groups: list[int], tmp_path: Path) -> None:
    go, done = tmp_path / "go", tmp_path / "done"
    root = spawn(BURNER, groups, str(go), str(done)).pid
    wait_for(lambda: psutil.Process(root).cpu_times(), 30, "the burner")
    before = _fleet.cpu_seconds(_fleet.tree_processes([root]))
    go.touch()
    wait_for(done.exists, 60, "the child to burn 0.5 s of CPU and be waited for")
    after = _fleet.cpu_seconds(_fleet.tree_processes([root]))
    print(f"CPU seconds before {before:.2f}, after {after:.2f}")
    # the burner child is gone; its 0.5 s is in the root's children times
    assert len(_fleet.tree_processes([root])) == 1
    assert after - before >= 0.45


# a sleeping parent whose child burns CPU until killed
SPINNER = textwrap.dedent(
    """
    import subprocess, sys, time
    subprocess.Popen([sys.executable, "-c", "while True:\\n    pass"])
    time.sleep(600)
    """
)


def test_idle_cpu_is_split_by_process(groups: list[int], tmp_path: Path) -> None:
    root = spawn(SPINNER, groups).pid
    procs = tree_of(root, 2)
    spinner = next(p for p in procs if p.pid != root)
    total, each = _fleet.idle_cpu_by_process(root, tmp_path / "no-state", 1.0)
    by_pid = {p.pid: cores for p, cores in each.items()}
    print(f"cores over 1 s: {by_pid}, total {total:.2f}")
    assert set(by_pid) == {root, spinner.pid}
    assert by_pid[spinner.pid] > by_pid[root], "the burning child, not its sleeping parent"
    assert abs(total - sum(by_pid.values())) < 0.01, "nothing exited: the parts make the total"
