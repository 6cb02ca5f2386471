"""Scenario: SIGTERM arrives in the middle of a publish, while the new commit's
code is loading or its dependencies are installing. dagfleet still stops within
30 s and leaves nothing running: the load and the install are abandoned, not
waited for."""

from __future__ import annotations

import textwrap
from pathlib import Path

from tests.e2e.conftest import demo_fleet
from tests.support.fleetproc import dagfleet_processes, wait_for
from tests.support.gitrepo import TRIVIAL_DEFS, CodeRepo

SLOW_IMPORT = "import time\n\ntime.sleep(600)\n" + TRIVIAL_DEFS

# A local package whose build never ends in time: uv is busy building it.
SLOW_SETUP = textwrap.dedent(
    """
    import time

    time.sleep(600)
    from setuptools import setup

    setup(name="slowpkg", version="0.1")
    """
)


def _cmdlines(state: Path) -> list[str]:
    return [" ".join(p.cmdline()) for p in dagfleet_processes(state)]


def test_sigterm_while_new_code_loads(tmp_path: Path, code_repo: CodeRepo, start_fleet) -> None:
    fleet = start_fleet(demo_fleet(tmp_path, code_repo), extra=["--no-daemon"])
    fleet.wait_loaded({"demo-A", "demo-B"})
    sha = code_repo.commit({"demo/definitions.py": SLOW_IMPORT}, "import takes ten minutes")
    code_repo.push("A")
    log = fleet.state / "logs" / "demo-A.log"
    wait_for(lambda: f"demo-A@{sha[:10]}" in log.read_text(), 60, "the new server starting")

    elapsed = fleet.stop()
    assert elapsed < 30
    assert dagfleet_processes(fleet.state) == []


def test_sigterm_while_dependencies_install(
    tmp_path: Path, code_repo: CodeRepo, start_fleet
) -> None:
    fleet = start_fleet(demo_fleet(tmp_path, code_repo), extra=["--no-daemon"])
    fleet.wait_loaded({"demo-A", "demo-B"})
    code_repo.commit(
        {
            "requirements.txt": "./slowpkg\n",
            "slowpkg/setup.py": SLOW_SETUP,
            "slowpkg/pyproject.toml": '[build-system]\nrequires = ["setuptools"]\n'
            'build-backend = "setuptools.build_meta"\n',
        },
        "a dependency that takes ten minutes to build",
    )
    code_repo.push("A")
    wait_for(
        lambda: any("slowpkg" in c or " pip install" in c for c in _cmdlines(fleet.state)),
        120,
        "uv installing the new dependencies",
    )

    elapsed = fleet.stop()
    assert elapsed < 30
    assert dagfleet_processes(fleet.state) == []
    # The cancelled install is not blamed on the commit.
    assert fleet.condition("demo-A", "Synced").get("reason") != "DependencyInstallFailed"
