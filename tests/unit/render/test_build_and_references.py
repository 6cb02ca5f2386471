"""Renders keep the local runtime's promises: build steps, uv controls, project
shapes (the Dockerfile's install script) and `${DAGFLEET_*}` references.

No Docker engine is needed: the Dockerfile is checked with a small parser of its
own (instructions, heredocs, exec-form JSON), its install script with `sh -n`,
and the script is run against real project trees with a recording `uv`, its
choices compared with dagfleet.venvs.project.detect.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from dagfleet.render import (
    ComposeOptions,
    EcsOptions,
    K8sOptions,
    render_compose,
    render_dockerfile,
    render_ecs,
    render_k8s,
)
from dagfleet.render import common as c
from dagfleet.render.dockerfile import EXTRAS, INSTALL_PATH, INSTALL_SCRIPT
from dagfleet.spec.models import Fleet
from dagfleet.spec.references import NAMES
from dagfleet.venvs.dagster_range import supported_spec
from dagfleet.venvs.project import detect
from tests.unit.render.fleets import default_fleet, make_fleet

pytestmark = pytest.mark.unit

REPO = "warehouse"
ENVS = ("dev", "prod")


def fleet(root: str = "/srv/lake") -> Fleet:
    fleet_doc = {
        "name": "refs",
        "storage": {"root": root},
        "environments": [{"name": "dev", "branch": "develop"}, {"name": "prod", "branch": "main"}],
    }
    repo = {
        "name": REPO,
        "git_url": "https://git.example.com/data/warehouse.git",
        "module_name": "warehouse.definitions",
        "working_directory": "pipelines",
        "environment": [
            {"name": "DBT_PROJECT_DIR", "value": "${DAGFLEET_CHECKOUT}/dbt"},
            {"name": "DBT_PROFILES_DIR", "value": "${DAGFLEET_PROJECT_DIR}/profiles"},
            {"name": "EXPORTS", "value": "${DAGFLEET_ASSETS}/exports"},
            {"name": "WHERE", "value": "${DAGFLEET_REPO} in ${DAGFLEET_ENV}"},
            {"name": "PRICE", "value": "$$5 or $HOME"},
            {"name": "PLAIN", "value": "as is"},
        ],
        "build": [
            {"run": "dbt deps", "working_directory": "dbt", "timeout": 120},
            "dbt parse --profiles-dir \"$DBT_PROFILES_DIR\" && echo 'it''s parsed'",
            {"run": "python -c 'print(1)'\nls target", "timeout": 2.5},
        ],
        "uv": {"constraints": ["numpy<2", "pandas>=2.1"], "overrides": ["protobuf>=5"]},
    }
    return make_fleet(fleet_doc, [repo])


def unlocked_fleet() -> Fleet:
    """A repo the fleet knows nothing of: its shape is decided when the image builds."""
    return make_fleet(
        {"name": "plain", "environments": [{"name": "dev", "branch": "main"}]},
        [{"name": "reqs", "git_url": "https://git.example.com/data/reqs.git"}],
    )


# ---- Dockerfile structure ---------------------------------------------------------
INSTRUCTIONS = {
    "FROM", "RUN", "CMD", "LABEL", "EXPOSE", "ENV", "ADD", "COPY", "ENTRYPOINT", "VOLUME",
    "USER", "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL", "HEALTHCHECK", "SHELL",
}  # fmt: skip
_HEREDOC = re.compile(r"<<-?'?\"?([A-Za-z_][A-Za-z0-9_]*)'?\"?")


def instructions(text: str) -> list[tuple[str, str, dict[str, str]]]:
    """(instruction, arguments, heredocs by delimiter), the way BuildKit reads them:
    comments dropped, `\\` continuations joined, heredoc bodies taken verbatim.
    Raises AssertionError for anything a Dockerfile cannot hold."""
    lines = text.splitlines()
    assert lines[0].startswith("# syntax=docker/dockerfile:1."), "BuildKit syntax directive"
    out: list[tuple[str, str, dict[str, str]]] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        while line.endswith("\\"):
            assert i < len(lines), "continuation at end of file"
            line = line[:-1] + lines[i]
            i += 1
        word, _, args = line.strip().partition(" ")
        assert word in INSTRUCTIONS, f"unknown instruction {word!r} in {line!r}"
        bodies: dict[str, str] = {}
        for delimiter in _HEREDOC.findall(args):
            body: list[str] = []
            while lines[i] != delimiter:
                body.append(lines[i])
                i += 1
                assert i < len(lines), f"heredoc {delimiter} never ends"
            i += 1
            bodies[delimiter] = "".join(b + "\n" for b in body)
        if word in ("RUN", "CMD", "HEALTHCHECK") and "[" in args and not bodies:
            form = args.removeprefix("CMD ") if word == "HEALTHCHECK" else args
            if form.startswith("["):
                argv = json.loads(form)  # an exec form that is not JSON would run as a shell
                assert isinstance(argv, list) and all(isinstance(a, str) for a in argv), form
        out.append((word, args, bodies))
    return out


def exec_runs(text: str) -> list[list[str]]:
    return [json.loads(a) for w, a, _ in instructions(text) if w == "RUN" and a.startswith("[")]


def dockerfile(f: Fleet, repo: str) -> str:
    text = render_dockerfile(f, repo)["Dockerfile"]
    assert isinstance(text, str)
    return text


def heredocs(text: str) -> dict[str, str]:
    return {k: v for _, _, b in instructions(text) for k, v in b.items()}


@pytest.mark.parametrize("make", [fleet, unlocked_fleet, default_fleet])
def test_every_dockerfile_parses_and_its_install_script_is_posix_sh(make: Any) -> None:
    f = make()
    for repo in f.repos:
        text = dockerfile(f, repo)
        docs = heredocs(text)
        assert docs["DAGFLEET_INSTALL"] == INSTALL_SCRIPT
        check = subprocess.run(["sh", "-n"], input=INSTALL_SCRIPT, text=True, check=False)
        assert check.returncode == 0
        if shutil.which("dash"):
            dash = subprocess.run(["dash", "-n"], input=INSTALL_SCRIPT, text=True, check=False)
            assert dash.returncode == 0


def test_build_steps_are_timed_runs_in_order_after_the_install() -> None:
    f = fleet()
    text = dockerfile(f, REPO)
    seq = [(w, a) for w, a, _ in instructions(text)]
    project = seq.index(("RUN", f"sh {INSTALL_PATH} project"))
    deps = seq.index(("RUN", f"sh {INSTALL_PATH} dependencies"))
    tree = seq.index(("COPY", f". {c.APP_DIR}"))
    # Layer caching: the locked dependencies before the whole tree.
    assert deps < tree < project
    runs = [i for i, (w, a) in enumerate(seq) if w == "RUN" and a.startswith("[")]
    assert len(runs) == 3 and runs[0] > project
    assert runs == list(range(runs[0], runs[0] + 3)), "one RUN per step, nothing between"
    launcher = next(i for i, (w, a) in enumerate(seq) if w == "COPY" and c.LAUNCHER_PATH in a)
    assert runs[-1] < launcher
    code_dir = f"{c.APP_DIR}/pipelines"
    steps = f.repos[REPO].build
    for argv, step, cwd, seconds in zip(
        exec_runs(text),
        steps,
        (f"{code_dir}/dbt", code_dir, code_dir),
        ("120", "600", "2.5"),
        strict=True,
    ):
        assert argv[:2] == ["env", f"--chdir={cwd}"]
        tail = argv.index("timeout")
        assert argv[tail:] == ["timeout", seconds, "sh", "-c", step.run]
        env = dict(a.split("=", 1) for a in argv[2:tail])
        assert env["DAGFLEET_CHECKOUT"] == c.APP_DIR
        assert env["DAGFLEET_PROJECT_DIR"] == code_dir
        assert env["DAGFLEET_REPO"] == REPO and env["DAGFLEET_FLEET"] == "refs"
        assert env["DBT_PROJECT_DIR"] == f"{c.APP_DIR}/dbt"
        assert env["DBT_PROFILES_DIR"] == f"{code_dir}/profiles"
        assert env["PRICE"] == "$5 or $HOME" and env["PLAIN"] == "as is"
        # Storage and environment names belong to a location, not to the image.
        assert "EXPORTS" not in env and "WHERE" not in env
    assert (
        "timeout"
        in subprocess.run(
            ["sh", "-c", "command -v timeout"], capture_output=True, text=True, check=False
        ).stdout
    )


def test_constraints_overrides_and_additions_are_files_in_the_image() -> None:
    docs = heredocs(dockerfile(fleet(), REPO))
    assert docs["DAGFLEET_CONSTRAINTS"] == "numpy<2\npandas>=2.1\n"
    assert docs["DAGFLEET_OVERRIDES"] == "protobuf>=5\n"
    # Every Dagster library no older than the supported range: an unbounded one could
    # resolve to an ancient release without a dagster pin that cannot import.
    assert docs["DAGFLEET_ADDITIONS"].splitlines() == [
        supported_spec(),
        "dagster-webserver>=1.10",
        "dagster-postgres>=0.26",
        "dagster-k8s>=0.26",
        "dagster-aws>=0.26",
        "debugpy",
    ]
    assert [line.split(">=")[0] for line in docs["DAGFLEET_ADDITIONS"].splitlines()[1:]] == list(
        EXTRAS
    )
    plain = heredocs(dockerfile(unlocked_fleet(), "reqs"))
    assert "DAGFLEET_CONSTRAINTS" not in plain and "DAGFLEET_OVERRIDES" not in plain


def test_a_repo_without_steps_has_no_step_runs() -> None:
    assert exec_runs(dockerfile(unlocked_fleet(), "reqs")) == []


def test_unlocked_repo_dockerfile_has_both_install_branches() -> None:
    text = dockerfile(unlocked_fleet(), "reqs")
    script = heredocs(text)["DAGFLEET_INSTALL"]
    assert "if [ -f uv.lock ] && [ -f pyproject.toml ]; then" in script
    assert "uv sync --locked --no-dev --no-editable --inexact" in script
    assert 'uv pip install "$@" -r "$here/additions.txt"' in script
    assert "uv pip install --no-deps ." in script
    # Either file may be absent: wildcards, which BuildKit lets match nothing.
    assert ("COPY", "pyproject.toml* uv.lock* ./") in [(w, a) for w, a, _ in instructions(text)]
    assert "COPY pyproject.toml uv.lock" not in text


# ---- the install script, run -------------------------------------------------------
SHAPES: dict[str, dict[str, str]] = {
    "uv.lock": {"pyproject.toml": '[project]\nname = "x"\n', "uv.lock": "version = 1\n"},
    "uv.lock without pyproject": {"uv.lock": "", "requirements.txt": "dagster\n"},
    "requirements": {"requirements.txt": "dagster\n", "requirements-dev.txt": "pytest\n"},
    "hatchling": {
        "pyproject.toml": '[project]\nname = "x"\n[build-system]\nrequires = ["hatchling"]\n'
        'build-backend = "hatchling.build"\n',
    },
    "virtual pyproject + requirements": {
        "pyproject.toml": '[project]\nname = "x"\n',
        "requirements.txt": "dagster\n",
    },
    "setup.py": {"setup.py": "from setuptools import setup\nsetup()\n"},
    "setup.cfg": {"setup.cfg": "[metadata]\nname = x\n"},
    "package = false": {
        "pyproject.toml": '[project]\nname = "x"\n[build-system]\nrequires = ["hatchling"]\n'
        "[tool.uv]\npackage = false\n",
    },
    "poetry": {
        "pyproject.toml": '[tool.poetry]\nname = "x"\n[build-system]\nrequires = ["poetry-core"]\n',
    },
    "tool-only pyproject + setup.cfg": {
        "pyproject.toml": "[tool.ruff]\nline-length = 100\n",
        "setup.cfg": "[metadata]\nname = x\n",
    },
    "broken pyproject": {"pyproject.toml": "[project\n", "requirements.txt": "x\n"},
}


def run_script(tmp: Path, project: Path, controls: bool) -> list[list[str]]:
    """Both phases of the install script in `project`, with a `uv` that records its
    arguments and `python3` the interpreter running the tests (tomllib)."""
    bindir, install = tmp / "bin", tmp / "install"
    bindir.mkdir(exist_ok=True)
    install.mkdir(exist_ok=True)
    log = tmp / "uv.log"
    uv = bindir / "uv"
    uv.write_text('#!/bin/sh\nprintf "%s\\037" "$@" >> "$UV_LOG"; echo >> "$UV_LOG"\n')
    uv.chmod(0o755)
    python = bindir / "python3"
    if not python.exists():
        python.symlink_to(sys.executable)
    (install / "install.sh").write_text(INSTALL_SCRIPT)
    (install / "additions.txt").write_text(supported_spec() + "\n")
    if controls:
        (install / "constraints.txt").write_text("numpy<2\n")
        (install / "overrides.txt").write_text("protobuf>=5\n")
    env = {
        "PATH": f"{bindir}{os.pathsep}/usr/bin:/bin",
        "UV_LOG": str(log),
        "VIRTUAL_ENV": str(tmp / "venv"),
    }
    for phase in ("dependencies", "project"):
        subprocess.run(["sh", str(install / "install.sh"), phase], cwd=project, env=env, check=True)
    return [line.split("\x1f")[:-1] for line in log.read_text().splitlines()]


def _r_files(args: list[str]) -> Iterator[str]:
    for flag, value in pairwise(args):
        if flag == "-r":
            yield value


@pytest.mark.parametrize("shape", list(SHAPES))
def test_install_script_installs_what_the_local_builder_does(shape: str, tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    for name, text in SHAPES[shape].items():
        (project / name).write_text(text)
    calls = run_script(tmp_path, project, controls=True)
    local = detect(project)
    install = tmp_path / "install"
    controls = [
        "--constraint",
        f"{install}/constraints.txt",
        "--override",
        f"{install}/overrides.txt",
    ]
    additions = ["-r", f"{install}/additions.txt"]
    if local.locked:
        # The additions (deployment extras) resolved against the lock, and the only
        # later sync --inexact: a plain sync is exact and would uninstall them.
        locked = ["--constraint", "/tmp/dagfleet-locked.txt"]
        assert calls == [
            ["sync", "--locked", "--no-dev", "--no-install-project"],
            ["pip", "freeze"],
            ["pip", "install", *locked, *controls, *additions],
            ["sync", "--locked", "--no-dev", "--no-editable", "--inexact"],
        ]
        return
    assert calls[0] == ["venv", "--quiet", str(tmp_path / "venv")]
    assert calls[1][:6] == ["pip", "install", *controls]
    assert calls[1][-2:] == additions
    sources = list(_r_files(calls[1][:-2]))
    assert sources == [p.name for p in local.sources]
    project_install = ["pip", "install", "--no-deps", "."]
    assert calls[2:] == ([project_install] if local.packaged else [])


def test_install_script_without_controls_passes_none(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "requirements.txt").write_text("dagster\n")
    calls = run_script(tmp_path, project, controls=False)
    assert calls[1] == [
        "pip",
        "install",
        "-r",
        "requirements.txt",
        "-r",
        f"{tmp_path}/install/additions.txt",
    ]


# ---- references ----------------------------------------------------------------------
def env_values(doc: Any, name: str) -> Iterator[str]:
    """Every value given to variable `name` anywhere in a rendered document: Kubernetes
    `{name, value}`, ECS `{Name, Value}`, compose `environment` maps, and inside
    JSON strings (DAGSTER_CONTAINER_CONTEXT)."""
    if isinstance(doc, dict):
        for key in (("name", "value"), ("Name", "Value")):
            if doc.get(key[0]) == name and key[1] in doc:
                yield doc[key[1]]
        if isinstance(doc.get("environment"), dict) and name in doc["environment"]:
            yield doc["environment"][name]
        for v in doc.values():
            yield from env_values(v, name)
    elif isinstance(doc, list):
        for v in doc:
            yield from env_values(v, name)
    elif isinstance(doc, str) and doc.startswith("{"):
        try:
            inner = json.loads(doc)
        except ValueError:
            return
        yield from env_values(inner, name)


def rendered_values(root: str = "/srv/lake") -> dict[str, dict[str, set[str]]]:
    f = fleet(root)
    targets = {
        "k8s": render_k8s(f, K8sOptions()),
        "ecs": render_ecs(f, EcsOptions()),
        "compose": render_compose(f, ComposeOptions()),
    }
    names = ("DBT_PROJECT_DIR", "DBT_PROFILES_DIR", "EXPORTS", "WHERE", "PRICE", "PLAIN")
    return {t: {n: set(env_values(r, n)) for n in names} for t, r in targets.items()}


def test_checkout_references_expand_to_each_targets_code_dir() -> None:
    got = rendered_values()
    k8s, image = c.K8S_CODE_DIR, c.APP_DIR
    assert k8s == "/opt/dagster/git/current"
    assert got["k8s"]["DBT_PROJECT_DIR"] == {f"{k8s}/dbt"}
    assert got["k8s"]["DBT_PROFILES_DIR"] == {f"{k8s}/pipelines/profiles"}
    for target in ("ecs", "compose"):
        assert got[target]["DBT_PROJECT_DIR"] == {f"{image}/dbt"}, target
        assert got[target]["DBT_PROFILES_DIR"] == {f"{image}/pipelines/profiles"}, target
    for target in got:
        assert got[target]["PRICE"] == {"$5 or $HOME"}, target
        assert got[target]["PLAIN"] == {"as is"}, target
        assert got[target]["WHERE"] == {f"{REPO} in {e}" for e in ENVS}, target
    # Kubernetes: the code server and the container context it hands its runs.
    k8s_text = json.dumps(render_k8s(fleet(), K8sOptions()))
    assert k8s_text.count(f"{k8s}/dbt") >= 2 * len(ENVS)
    dockerfile_runs = exec_runs(dockerfile(fleet(), REPO))
    assert all(f"DBT_PROJECT_DIR={image}/dbt" in argv for argv in dockerfile_runs)


def test_storage_references_expand_to_each_targets_storage() -> None:
    local = rendered_values("/srv/lake")
    for target, want in (
        ("k8s", {f"{c.DATA_ROOT}/{e}/repos/{REPO}/assets/exports" for e in ENVS}),
        ("compose", {f"{c.DATA_ROOT}/{e}/repos/{REPO}/assets/exports" for e in ENVS}),
        ("ecs", {f"s3://dagster-storage/{e}/repos/{REPO}/assets/exports" for e in ENVS}),
    ):
        assert local[target]["EXPORTS"] == want, target
    s3 = rendered_values("s3://lake/dagster")
    for target in s3:
        want = {f"s3://lake/dagster/{e}/repos/{REPO}/assets/exports" for e in ENVS}
        assert s3[target]["EXPORTS"] == want, target


def test_no_render_keeps_an_unexpanded_reference() -> None:
    f = fleet()
    for rendered in (
        render_k8s(f, K8sOptions()),
        render_ecs(f, EcsOptions()),
        render_compose(f, ComposeOptions()),
        render_dockerfile(f, REPO),
    ):
        # The references a repo's values may use (the front door's own `${DAGFLEET_...:-}`
        # compose and shell variables are not references).
        text = json.dumps(rendered)
        assert not [n for n in NAMES if "${" + n + "}" in text]
