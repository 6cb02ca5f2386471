"""Bad fleet files through the real CLI (issue 16, item 2): duplicate keys, 100,000
nested `[` and a 10 MB repo file are each refused with the file, the line and the
key or the limit, and exit 2, from `dagfleet validate`, `up` and `repo add`; the
oversized file quickly and in little memory; a load stops promptly on a signal."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.fleetproc import DAGFLEET, free_port

pytestmark = pytest.mark.integration

FLEET_OK = "name: acme\nenvironments:\n  - {name: A, branch: A}\n  - {name: B}\n"
REPO_OK = "name: sales\ngit_url: /srv/nowhere/sales.git\nmodule_name: sales.defs\n"
NESTED = "[" * 100_000 + "]" * 100_000


def fleet(root: Path, fleet_text: str = FLEET_OK, repo: str = REPO_OK) -> Path:
    (root / "repos").mkdir(parents=True)
    (root / "fleet.yaml").write_text(fleet_text)
    (root / "repos" / "sales.yaml").write_text(repo)
    return root


def env() -> dict[str, str]:
    # No fleet runs: the API URL is a port nobody listens on.
    return {**os.environ, "DAGFLEET_API_URL": f"http://127.0.0.1:{free_port()}", "NO_COLOR": "1"}


def run(args: list[str], cwd: Path, timeout: float = 60) -> tuple[int, str, float, int]:
    """Exit code, stderr, seconds and the child's peak RSS in MiB (os.wait4; at least the
    parent's size at fork, so a figure to print, not to assert). A
    command still running after `timeout` (say `up` accepted the file and started the
    fleet) is stopped with its whole process group, and the test fails."""
    err = cwd / "stderr.txt"
    started = time.monotonic()
    with err.open("wb") as stderr:
        proc = subprocess.Popen(
            [DAGFLEET, *args],
            cwd=cwd,
            env=env(),
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            start_new_session=True,
        )
    try:
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                proc.returncode = os.waitstatus_to_exitcode(status)
                break
            if time.monotonic() - started > timeout:
                pytest.fail(f"`dagfleet {' '.join(args)}` still running after {timeout} s")
            time.sleep(0.05)
    finally:
        if proc.returncode is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    seconds = time.monotonic() - started
    return proc.returncode, err.read_text(), seconds, usage.ru_maxrss // 1024


COMMANDS = {
    "validate": ["validate", "--fleet", "{fleet}"],
    "up": ["up", "--fleet", "{fleet}", "--port", "{port}", "--api-port", "{port2}"],
}


def command(name: str, root: Path) -> list[str]:
    fields = {"fleet": str(root), "port": str(free_port()), "port2": str(free_port())}
    return [arg.format(**fields) for arg in COMMANDS[name]]


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_duplicate_keys_in_a_repo_file_exit_2_naming_file_line_and_key(
    tmp_path: Path, name: str
) -> None:
    root = fleet(tmp_path / "f", repo=REPO_OK + "suspend: true\nsuspend: false\n")
    code, err, _, _ = run(command(name, root), tmp_path)
    assert code == 2, err
    assert "repos/sales.yaml: suspend: line 5: duplicate key 'suspend' (first on line 4)" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_duplicate_name_in_fleet_yaml_exits_2(tmp_path: Path, name: str) -> None:
    text = "name: acme\nname: other\nenvironments:\n  - {name: A, branch: A}\n"
    root = fleet(tmp_path / "f", fleet_text=text)
    code, err, _, _ = run(command(name, root), tmp_path)
    assert code == 2, err
    assert "fleet.yaml: name: line 2: duplicate key 'name' (first on line 1)" in err


def test_repo_add_refuses_a_fleet_yaml_with_duplicate_keys(tmp_path: Path) -> None:
    text = FLEET_OK + "name: other\n"
    root = fleet(tmp_path / "f", fleet_text=text)
    args = ["repo", "add", "more", "--git-url", "/srv/m.git", "--no-discover", "--fleet", str(root)]
    code, err, _, _ = run(args, tmp_path)
    assert code == 2, err
    assert "fleet.yaml: name: line 5: duplicate key 'name' (first on line 1)" in err
    assert not (root / "repos" / "more.yaml").exists()


@pytest.mark.parametrize("where", ["fleet.yaml", "repos/sales.yaml"])
@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_100000_nested_brackets_exit_2_with_the_limit(
    tmp_path: Path, where: str, name: str
) -> None:
    root = fleet(tmp_path / "f")
    (root / where).write_text(NESTED)
    code, err, _, _ = run(command(name, root), tmp_path)
    assert code == 2, err
    assert f"{where}: line 1, column 65: nested deeper than 64 levels" in err
    assert "RecursionError" not in err and "Traceback" not in err


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_a_10_mb_repo_file_is_refused_by_its_size(tmp_path: Path, name: str) -> None:
    entries = "".join(f"  - {{name: VAR_{i:06d}, value: v}}\n" for i in range(300_000))
    root = fleet(tmp_path / "f", repo=REPO_OK + "environment:\n" + entries)
    size = (root / "repos" / "sales.yaml").stat().st_size
    assert size > 9_500_000
    code, err, seconds, peak_mib = run(command(name, root), tmp_path)
    assert code == 2, err
    assert f"repos/sales.yaml: is {size:,} bytes, over the 1,048,576-byte limit" in err
    # Measured and printed, not asserted: time depends on the machine's load, and a forked
    # child's ru_maxrss starts at its parent's (pytest's) size. The probe saw 90 s, 1.3 GB.
    print(f"{name}: refused in {seconds:.2f} s, peak RSS {peak_mib} MiB")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_load_of_the_largest_allowed_file_stops_promptly_on_a_signal(
    tmp_path: Path, sig: signal.Signals
) -> None:
    line = "  - {name: VAR_000000, value: v}\n"
    head = REPO_OK + "environment:\n"
    count = (1_048_576 - len(head)) // len(line)
    entries = "".join(f"  - {{name: VAR_{i:06d}, value: v}}\n" for i in range(count))
    root = fleet(tmp_path / "f", repo=head + entries)
    proc = subprocess.Popen(
        [DAGFLEET, *command("validate", root)],
        cwd=tmp_path,
        env=env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(1.0)  # imports, then the load
        sent = time.monotonic()
        proc.send_signal(sig)
        proc.wait(timeout=60)  # a hang fails here; how fast it stops is not asserted
        print(f"stopped {time.monotonic() - sent:.2f} s after signal {sig}")
        assert proc.returncode != 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
