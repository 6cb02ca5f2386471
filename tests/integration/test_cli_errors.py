"""The CLI as a user runs it: a broken fleet exits 2 with every problem and starts nothing."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

pytestmark = pytest.mark.integration

DAGFLEET = str(Path(sys.executable).parent / "dagfleet")

BROKEN_PROBLEMS = [
    "fleet.yaml: environments[1].name: 'bad_env' is not a valid environment name: use "
    "letters, digits and '-', starting and ending with a letter or digit",
    "repos/broken.yaml: line 2, column 10: invalid YAML: mapping values are not allowed in "
    "this context",
    "repos/typo.yaml: module: unknown key: remove it or check its spelling",
    "repos/sales.yaml: branch: 'A B' is not a valid git ref",
]


def run(args: list[str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    # Free ports are irrelevant here: a broken fleet must not get as far as binding any.
    return subprocess.run(
        [DAGFLEET, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


def broken_fleet(root: Path) -> Path:
    (root / "repos").mkdir(parents=True)
    (root / "fleet.yaml").write_text("name: acme\nenvironments: [{name: A}, {name: bad_env}]\n")
    (root / "repos" / "broken.yaml").write_text("name: broken\n  git_url: [\n")
    (root / "repos" / "typo.yaml").write_text("name: typo\ngit_url: /srv/t.git\nmodule: x\n")
    (root / "repos" / "sales.yaml").write_text("name: sales\ngit_url: /srv/s.git\nbranch: A B\n")
    return root


def processes_mentioning(path: Path) -> list[str]:
    found = []
    for proc in psutil.process_iter(["cmdline", "cwd"]):
        try:
            cmd = " ".join(proc.info["cmdline"] or [])
            if str(path) in cmd or (proc.info["cwd"] or "").startswith(str(path)):
                found.append(f"{proc.pid}: {cmd}")
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def test_up_on_a_broken_fleet_reports_everything_and_starts_nothing(tmp_path: Path) -> None:
    fleet = broken_fleet(tmp_path / "fleet")
    result = run(["up", "--fleet", str(fleet)], cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    flat = " ".join(result.stderr.split())
    for problem in BROKEN_PROBLEMS:
        assert problem in flat
    assert "4 problem(s); nothing was started." in flat
    assert flat.count("error ") == 4
    assert sorted(p.name for p in fleet.iterdir()) == ["fleet.yaml", "repos"]
    assert not (fleet / ".dagfleet" / "dagster_home").exists()
    assert not (tmp_path / ".dagfleet").exists()
    assert processes_mentioning(fleet) == []


def test_each_problem_is_one_line(tmp_path: Path) -> None:
    result = run(["up", "--fleet", str(broken_fleet(tmp_path / "fleet"))], cwd=tmp_path)
    lines = result.stderr.splitlines()
    for problem in BROKEN_PROBLEMS:
        assert f"error {problem}" in lines


def test_status_on_a_broken_fleet_exits_2(tmp_path: Path) -> None:
    fleet = broken_fleet(tmp_path / "fleet")
    result = run(["status", "--json", "--fleet", str(fleet)], cwd=tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    assert "repos/sales.yaml: branch: 'A B' is not a valid git ref" in " ".join(
        result.stderr.split()
    )


def test_init_then_status(tmp_path: Path) -> None:
    fleet = tmp_path / "myfleet"
    init = run(["init", str(fleet)], cwd=tmp_path)
    assert init.returncode == 0, init.stderr
    assert "fleet.yaml" in init.stdout and (fleet / "repos" / "medallion.yaml").is_file()

    status = run(["status", "--fleet", str(fleet), "--json"], cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout) == []

    from_inside = run(["status", "--json"], cwd=fleet)
    assert from_inside.returncode == 0, from_inside.stderr
    assert json.loads(from_inside.stdout) == []

    # A status a fleet wrote before it stopped: its commit stays, and it says it is stopped
    # (no `dagfleet up` holds the fleet's lock, see status.liveness).
    from dagfleet.status import LocationStatus, StatusStore

    status = LocationStatus(location="medallion-A", repo="medallion", env="A", commit="a" * 40)
    status = status.with_condition("Serving", "True", "CodeServerRunning", "serving aaaa")
    StatusStore(fleet / ".dagfleet" / "status").write(status)
    result = run(["status", "--json"], cwd=fleet)
    (shown,) = json.loads(result.stdout)
    assert (shown["location"], shown["commit"]) == ("medallion-A", "a" * 40)
    assert [(c["type"], c["status"], c["reason"]) for c in shown["conditions"]] == [
        ("Serving", "False", "FleetStopped"),
        ("Ready", "False", "FleetStopped"),
    ]
    stamp = shown["conditions"][1]["last_transition"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", stamp)
    assert processes_mentioning(fleet) == []


def test_init_refuses_an_existing_fleet(tmp_path: Path) -> None:
    assert run(["init", str(tmp_path)], cwd=tmp_path).returncode == 0
    before = (tmp_path / "fleet.yaml").read_text()
    again = run(["init", str(tmp_path)], cwd=tmp_path)
    assert again.returncode == 2
    assert "already exists: choose an empty directory" in " ".join(again.stderr.split())
    assert (tmp_path / "fleet.yaml").read_text() == before


def test_status_without_a_fleet_exits_2_with_a_hint(tmp_path: Path) -> None:
    result = run(["status"], cwd=tmp_path)
    assert result.returncode == 2
    flat = " ".join(result.stderr.split())
    assert "no fleet here" in flat and "dagfleet init DIR" in flat
    assert result.stdout == ""
    assert list(tmp_path.iterdir()) == [], "status creates nothing"
