"""Scenario: the package index a repository installs from is down when its commit
arrives. The install fails with a connection error, which says nothing about the
commit: the location reports that a retry is coming and when, and once the index
answers again the same commit goes live, with no new push and no forced sync.

The index is a real one on this machine: a directory served over HTTP in the
PEP 503 layout (http.server's listings are valid simple-index pages), holding a
wheel built at test time. The repo asks for it with `--extra-index-url`, so uv
asks that index first for every package and cannot resolve while it is down.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import demo_fleet, with_asset
from tests.support.fleetproc import free_port
from tests.support.gitrepo import CodeRepo
from tests.support.shapes import uv_binary

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def probe_index(root: Path) -> Path:
    """`root/simple/dagfleet-probe/<wheel>`: a one-module distribution, built now."""
    src = root / "probe-src"
    (src / "dagfleet_probe").mkdir(parents=True)
    (src / "dagfleet_probe" / "__init__.py").write_text("ANSWER = 42\n")
    (src / "pyproject.toml").write_text(
        textwrap.dedent(
            """
            [project]
            name = "dagfleet-probe"
            version = "0.1"
            [build-system]
            requires = ["hatchling"]
            build-backend = "hatchling.build"
            """
        )
    )
    out = root / "simple" / "dagfleet-probe"
    subprocess.run(
        [uv_binary(), "build", "--wheel", "--out-dir", str(out), str(src)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return root


@pytest.fixture
def index_server(tmp_path: Path) -> Iterator[tuple[int, Path, list[subprocess.Popen[bytes]]]]:
    """A port nobody listens on yet, the index directory, and the server once started."""
    started: list[subprocess.Popen[bytes]] = []
    yield free_port(), probe_index(tmp_path / "index"), started
    for proc in started:
        proc.terminate()
        proc.wait(10)


def test_install_retried_when_the_index_comes_back(
    tmp_path: Path, code_repo: CodeRepo, start_fleet, index_server
) -> None:
    port, index, started = index_server
    uses_probe = with_asset(
        "probed", extra="import dagfleet_probe\nassert dagfleet_probe.ANSWER == 42\n"
    )
    sha = code_repo.commit(
        {
            "requirements.txt": f"--extra-index-url http://127.0.0.1:{port}/simple\n"
            "dagster==1.13.27\ndagfleet-probe==0.1\n",
            "demo/definitions.py": uses_probe,
        },
        "needs a package from our own index",
        branch="A",
    )
    code_repo.push("A")
    fleet = start_fleet(demo_fleet(tmp_path, code_repo, environments=["A"]), extra=["--no-daemon"])
    cond = fleet.wait_synced_reason("demo-A", "DependencyInstallFailed")
    assert sha[:12] in cond["message"]
    assert "retrying in" in cond["message"], cond["message"]
    assert fleet.status("demo-A").get("commit") is None

    started.append(
        subprocess.Popen(
            [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
            cwd=index,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    )
    # No push, no forced sync: the retry alone brings the same commit live.
    fleet.wait_serving("demo-A", sha, timeout=240)
    assert code_repo.tip("A") == sha
    assert "probed" in fleet.gql.asset_keys("demo-A")
