"""dagfleet as a tool: the versioned wheels `make dist` builds install with `uv tool install`
into a clean tool environment (nothing from the dev .venv), and that dagfleet works:
`version`, `init` (the medallion example travels inside the wheel) and `validate`
(which installs the dagfleet-runtime the wheel ships into the location environments).

The install is the very command `render ci --dagfleet-wheels wheels` writes into the
workflow, run from a fleet repository holding the wheels, as a CI job runs it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from dagfleet.render.ci import render_ci, wheels_problem
from dagfleet.render.options import CiOptions
from dagfleet.scaffold import init_fleet
from dagfleet.spec import load_fleet

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
RUNTIME = ROOT / "packages" / "dagfleet-runtime"


def version() -> str:
    """The one version of both wheels (dagfleet-runtime's pyproject.toml)."""
    return str(tomllib.loads((RUNTIME / "pyproject.toml").read_text())["project"]["version"])


def uv() -> str:
    found = shutil.which("uv") or str(Path(sys.executable).parent / "uv")
    assert Path(found).exists(), "uv not found"
    return found


def clean_env(tmp: Path) -> dict[str, str]:
    """No dev venv: no VIRTUAL_ENV, no .venv/bin on PATH (uv comes through a link of its
    own, wherever it is installed); tools and their links in tmp."""
    dev_bin = str(Path(sys.executable).parent)
    path = [p for p in os.environ.get("PATH", "").split(os.pathsep) if p and p != dev_bin]
    (tmp / "uv-bin").mkdir()
    (tmp / "uv-bin" / "uv").symlink_to(uv())
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env |= {
        "PATH": os.pathsep.join([str(tmp / "bin"), str(tmp / "uv-bin"), *path]),
        "UV_TOOL_DIR": str(tmp / "tools"),
        "UV_TOOL_BIN_DIR": str(tmp / "bin"),
        "HOME": os.environ.get("HOME", str(tmp)),
    }
    return env


def run(cmd: list[str], env: dict[str, str], cwd: Path, timeout: float = 900) -> str:
    proc = subprocess.run(
        cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert proc.returncode == 0, f"{cmd} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def rendered_install(fleet_repo: Path) -> str:
    """The `Install dagfleet` step of `render ci --dagfleet-wheels wheels` (one in every job)."""
    opts = CiOptions(dagfleet_wheels="wheels")
    assert wheels_problem(fleet_repo, opts, version()) is None
    workflow = render_ci(load_fleet(fleet_repo), opts)[".github/workflows/dagfleet.yaml"]
    steps = [s for job in workflow["jobs"].values() for s in job["steps"]]
    commands = {s["run"] for s in steps if s.get("name") == "Install dagfleet"}
    assert len(commands) == 1, commands
    return commands.pop()


def test_built_wheels_install_as_a_tool_and_run(tmp_path: Path) -> None:
    v = version()
    fleet_repo = init_fleet(tmp_path / "fleet-repo")
    dist = fleet_repo / "wheels"
    build_env = {k: val for k, val in os.environ.items() if k != "VIRTUAL_ENV"}
    run([uv(), "build", "--wheel", "--out-dir", str(dist), str(ROOT)], build_env, ROOT)
    run([uv(), "build", "--wheel", "--out-dir", str(dist), str(RUNTIME)], build_env, ROOT)
    wheel = dist / f"dagfleet-{v}-py3-none-any.whl"
    assert wheel.exists(), sorted(p.name for p in dist.iterdir())
    assert (dist / f"dagfleet_runtime-{v}-py3-none-any.whl").exists()
    with zipfile.ZipFile(wheel) as zf:
        metadata = zf.read(f"dagfleet-{v}.dist-info/METADATA").decode()
        names = set(zf.namelist())
    assert f"Requires-Dist: dagfleet-runtime=={v}" in metadata.splitlines()
    assert "dagfleet/_examples/medallion/medallion/definitions.py" in names
    assert "dagfleet/_packages/dagfleet-runtime/pyproject.toml" in names

    install = rendered_install(fleet_repo)
    assert install == f"uv tool install --find-links wheels dagfleet=={v}"
    env = clean_env(tmp_path)
    env["UV_PYTHON"] = f"{sys.version_info.major}.{sys.version_info.minor}"
    run(["bash", "-e", "-c", install], env, fleet_repo)
    dagfleet = tmp_path / "bin" / "dagfleet"
    assert dagfleet.exists()

    # The tool environment holds both packages from the wheels, not the dev checkout.
    tool_python = tmp_path / "tools" / "dagfleet" / "bin" / "python"
    where = run(
        [
            str(tool_python),
            "-c",
            "import json, dagfleet, dagfleet_runtime; from importlib.metadata import version;"
            "print(json.dumps([dagfleet.__file__, dagfleet_runtime.__file__,"
            " version('dagfleet_runtime')]))",
        ],
        env,
        tmp_path,
    )
    dagfleet_file, runtime_file, runtime_version = json.loads(where)
    tools = str((tmp_path / "tools").resolve())
    assert str(Path(dagfleet_file).resolve()).startswith(tools)
    assert str(Path(runtime_file).resolve()).startswith(tools)
    assert runtime_version == v

    assert run([str(dagfleet), "version"], env, tmp_path).strip() == v

    fleet = tmp_path / "fleet"
    out = run([str(dagfleet), "init", str(fleet)], env, tmp_path)
    assert "fleet.yaml" in out
    assert (fleet / "fleet.yaml").exists()
    assert (fleet / "repos" / "medallion.yaml").exists()

    results = json.loads(
        run([str(dagfleet), "validate", "--fleet", str(fleet), "--json"], env, tmp_path)
    )
    assert sorted(r["location"] for r in results) == ["medallion-A", "medallion-B"]
    assert all(r["ok"] for r in results), results
