"""The launcher resolves targets with the installed Dagster; the CLI writes, reports and refuses."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from dagfleet.cli import app
from dagfleet.render.dockerfile import EXTRAS
from dagfleet.render.launcher import LAUNCHER_SOURCE
from dagfleet.spec.defaults import default_fleet_document, medallion_repo_document

pytestmark = pytest.mark.unit


def launch(tmp_path: Path, code_dir: Path, **env: str) -> list[str]:
    script = tmp_path / "launch.py"
    script.write_text(LAUNCHER_SOURCE)
    full = {**os.environ, "DAGFLEET_CODE_DIR": str(code_dir), "DAGFLEET_LOCATION": "x-A", **env}
    out = subprocess.run(
        [sys.executable, str(script), "--print"],
        env=full,
        capture_output=True,
        text=True,
        check=True,
    )
    result: list[str] = json.loads(out.stdout)
    return result


DAGSTER_BLOCK = '[tool.dagster]\nmodule_name = "pkg.defs"\n'
DG_BLOCK = '[tool.dg.project]\nroot_module = "proj"\n'
WORKSPACE = (
    "load_from:\n  - python_module:\n      module_name: my.defs\n"
    "  - python_package:\n      package_name: playground\n      location_name: playground\n"
)


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"pyproject.toml": DAGSTER_BLOCK}, ["--module-name", "pkg.defs"]),
        ({"pyproject.toml": DG_BLOCK}, ["--module-name", "proj.definitions"]),
        ({"workspace.yaml": WORKSPACE}, ["--module-name", "my.defs"]),
    ],
)
def test_launcher_discovers_the_target_like_dagster(
    tmp_path: Path, files: dict[str, str], expected: list[str]
) -> None:
    code = tmp_path / "code"
    code.mkdir()
    for name, text in files.items():
        (code / name).write_text(text)
    cmd = launch(tmp_path, code)
    assert cmd[1:5] == ["-m", "dagster", "code-server", "start"]
    assert cmd[-4:-2] == expected and cmd[-2:] == ["--working-directory", str(code)]


def test_launcher_uses_given_args_and_debugpy(tmp_path: Path) -> None:
    args = json.dumps(["-m", "a.b", "--working-directory", "/x"])
    cmd = launch(tmp_path, tmp_path, DAGFLEET_TARGET_ARGS=args, DAGFLEET_DEBUG_PORT="5678")
    assert cmd[1:5] == ["-m", "debugpy", "--listen", "0.0.0.0:5678"]
    assert cmd[-4:] == ["-m", "a.b", "--working-directory", "/x"]


def fleet_dir(tmp_path: Path) -> Path:
    (tmp_path / "repos").mkdir()
    (tmp_path / "fleet.yaml").write_text(yaml.safe_dump(default_fleet_document()))
    repo = medallion_repo_document("https://git.example.com/data/medallion.git")
    (tmp_path / "repos" / "medallion.yaml").write_text(yaml.safe_dump(repo))
    return tmp_path


@pytest.mark.parametrize("target", ["k8s", "flux", "ecs", "compose", "ci"])
def test_render_commands_write_files(tmp_path: Path, target: str) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app, ["render", target, "--out", str(out), "--fleet", str(fleet_dir(tmp_path))]
    )
    assert result.exit_code == 0, result.output
    assert any(out.rglob("*.yaml"))


def test_rendered_ci_installs_dagfleet_from_the_given_source(tmp_path: Path) -> None:
    source = "git+https://git.example.com/platform/dagfleet@v0.1.0"
    out = tmp_path / "out"
    args = ["render", "ci", "--out", str(out), "--fleet", str(fleet_dir(tmp_path))]
    result = CliRunner().invoke(app, [*args, "--dagfleet-source", source])
    assert result.exit_code == 0, result.output
    workflow = yaml.safe_load((out / ".github" / "workflows" / "dagfleet.yaml").read_text())
    installs = [
        step["run"]
        for job in workflow["jobs"].values()
        for step in job["steps"]
        if step.get("name") == "Install dagfleet"
    ]
    assert installs == [f"uv tool install {source}"] * 2


def test_render_dockerfile_and_unknown_repo(tmp_path: Path) -> None:
    fleet = str(fleet_dir(tmp_path))
    ok = CliRunner().invoke(
        app, ["render", "dockerfile", "medallion", "--out", str(tmp_path / "d"), "--fleet", fleet]
    )
    assert (
        ok.exit_code == 0
        and 'dagster", "code-server"' in (tmp_path / "d" / "Dockerfile").read_text()
    )
    bad = CliRunner().invoke(
        app, ["render", "dockerfile", "nope", "--out", str(tmp_path / "e"), "--fleet", fleet]
    )
    assert bad.exit_code == 2


def test_dockerfile_keeps_deployment_extras_after_the_final_sync(tmp_path: Path) -> None:
    """`uv sync` is exact: a sync after the extras install must be --inexact or it drops them."""
    out = tmp_path / "d"
    fleet = str(fleet_dir(tmp_path))
    result = CliRunner().invoke(
        app, ["render", "dockerfile", "medallion", "--out", str(out), "--fleet", fleet]
    )
    assert result.exit_code == 0, result.output
    text = (out / "Dockerfile").read_text().replace("\\\n", " ")
    steps = [" ".join(line.split()) for line in text.splitlines()]
    runs = [i for i, step in enumerate(steps) if step.startswith("RUN ")]
    copy_all = steps.index(next(step for step in steps if step.startswith("COPY . ")))
    extras = [
        i for i in runs if "uv pip install" in steps[i] and set(EXTRAS) <= set(steps[i].split())
    ]
    assert extras, "the deployment extras are not installed"
    assert any(i > copy_all and "uv sync" in steps[i] for i in runs), "checkout never installed"
    later_syncs = [steps[i] for i in runs if i > extras[-1] and "uv sync" in steps[i]]
    assert all("--inexact" in sync.split() for sync in later_syncs), later_syncs


def test_spec_error_prints_every_problem_and_exits_2(tmp_path: Path) -> None:
    (tmp_path / "fleet.yaml").write_text("name: Bad Name\nenvironments: []\n")
    result = CliRunner().invoke(
        app, ["render", "k8s", "--out", str(tmp_path / "o"), "--fleet", str(tmp_path)]
    )
    assert result.exit_code == 2
    assert "fleet.yaml: name" in result.output and "fleet.yaml: environments" in result.output


def test_deploy_prints_commands_and_refuses_to_apply_without_tools(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Only git (the spec loader checks refs with it): no kubectl, no helm.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "git").symlink_to(shutil.which("git") or "/usr/bin/git")
    monkeypatch.setenv("PATH", str(bin_dir))
    args = ["deploy", "k8s", "--out", str(tmp_path / "o"), "--fleet", str(fleet_dir(tmp_path))]
    shown = CliRunner().invoke(app, args)
    assert shown.exit_code == 0
    assert "helm repo add --force-update dagster https://dagster-io.github.io/helm" in shown.output
    assert (
        "kubectl apply -k" in shown.output
        and "helm upgrade --install dagster dagster/dagster" in shown.output
    )
    applied = CliRunner().invoke(app, [*args, "--apply"])
    assert applied.exit_code == 1
    assert "kubectl and helm not found on PATH" in applied.output
