"""The launcher resolves targets with the installed Dagster; the CLI writes, reports and refuses."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from dagfleet.cli import app
from dagfleet.playground_loader import LOADER as PLAYGROUND_LOADER
from dagfleet.render import common as c
from dagfleet.render.ci import fetch_commands
from dagfleet.render.flux import HELM_REPO_URL
from dagfleet.render.launcher import LAUNCHER_SOURCE
from dagfleet.render.options import DEFAULT_DAGSTER_VERSION
from dagfleet.spec import load_fleet
from dagfleet.spec.defaults import default_fleet_document, medallion_repo_document
from tests.support.gitdaemon import git_daemon
from tests.support.gitrepo import CodeRepo

pytestmark = pytest.mark.unit


@pytest.fixture
def stack() -> Iterator[ExitStack]:
    with ExitStack() as s:
        yield s


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


def test_launcher_serves_every_file_copied_into_the_playground(tmp_path: Path) -> None:
    """Seed 000's workflow B on Kubernetes: `kubectl cp my_test.py` into the playground
    directory, reload, and its asset is there. The launcher (next to the loader, as in
    the rendered ConfigMap) installs the package; the rendered target args load it."""
    (tmp_path / c.PLAYGROUND_INIT).write_text(PLAYGROUND_LOADER)
    app_dir = tmp_path / "app"
    playground = app_dir / "playground"
    playground.mkdir(parents=True)
    (playground / "my_test.py").write_text(
        "import dagster as dg\n\n\n@dg.asset\ndef tried_live() -> int:\n    return 1\n"
    )
    fleet = load_fleet(fleet_dir(tmp_path / "fleet"))
    loc = next(loc for loc in fleet.locations() if loc.playground)
    args = c.target_args(fleet, loc, "unused")
    assert args is not None
    args[args.index("--working-directory") + 1] = str(app_dir)
    cmd = launch(
        tmp_path, playground, DAGFLEET_PLAYGROUND="1", DAGFLEET_TARGET_ARGS=json.dumps(args)
    )
    assert cmd[-4:] == ["--package-name", "playground", "--working-directory", str(app_dir)]
    assert (playground / "__init__.py").read_text() == PLAYGROUND_LOADER
    keys = subprocess.run(
        [
            sys.executable,
            "-c",
            "import playground; print(sorted(k.to_user_string() for k in "
            "playground.defs.resolve_asset_graph().get_all_asset_keys()))",
        ],
        cwd=app_dir,
        capture_output=True,
        text=True,
        check=True,
    )
    assert keys.stdout.strip() == "['tried_live']"


# Deployments run images by explicit version: --tag has no default.
TAG = ["--tag", "0123abc"]


def fleet_dir(tmp_path: Path) -> Path:
    (tmp_path / "repos").mkdir(parents=True)
    (tmp_path / "fleet.yaml").write_text(yaml.safe_dump(default_fleet_document()))
    repo = medallion_repo_document("https://git.example.com/data/medallion.git")
    (tmp_path / "repos" / "medallion.yaml").write_text(yaml.safe_dump(repo))
    return tmp_path


@pytest.mark.parametrize("target", ["k8s", "flux", "ecs", "compose", "ci"])
def test_render_commands_write_files(tmp_path: Path, target: str) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app,
        ["render", target, "--out", str(out), "--fleet", str(fleet_dir(tmp_path))]
        + (TAG if target != "ci" else []),
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
    args += TAG
    shown = CliRunner().invoke(app, args)
    assert shown.exit_code == 0
    assert "helm repo add --force-update dagster https://dagster-io.github.io/helm" in shown.output
    assert (
        "kubectl apply -k" in shown.output
        and "helm upgrade --install dagster dagster/dagster" in shown.output
    )
    # The Secrets the operator creates once, named (never with values).
    assert "create secret generic dagfleet-frontdoor" in shown.output
    assert "create secret generic dagfleet-api" in shown.output
    applied = CliRunner().invoke(app, [*args, "--apply"])
    assert applied.exit_code == 1
    assert "kubectl and helm not found on PATH" in applied.output


def test_deploy_names_the_run_secret_in_every_environment_namespace(tmp_path: Path) -> None:
    fleet = fleet_dir(tmp_path)
    envs = yaml.safe_load((fleet / "fleet.yaml").read_text())["environments"]
    args = ["deploy", "k8s", "--out", str(tmp_path / "o"), "--fleet", str(fleet), "--skip-build"]
    args += TAG
    shown = CliRunner().invoke(app, args)
    assert shown.exit_code == 0, shown.output
    for env in envs:
        ns = f"-{env['name'].lower()} create secret generic dagster-postgresql-secret"
        assert ns in shown.output


def test_render_k8s_pvc_access_mode_flag(tmp_path: Path) -> None:
    fleet = fleet_dir(tmp_path)
    modes = {}
    for mode in ("ReadWriteMany", "ReadWriteOnce"):
        out = tmp_path / mode
        args = ["render", "k8s", "--out", str(out), "--fleet", str(fleet), *TAG]
        result = CliRunner().invoke(app, [*args, "--pvc-access-mode", mode])
        assert result.exit_code == 0, result.output
        claims = [
            doc
            for f in sorted(out.rglob("*.yaml"))
            for doc in yaml.safe_load_all(f.read_text())
            if isinstance(doc, dict) and doc.get("kind") == "PersistentVolumeClaim"
        ]
        assert claims
        modes[mode] = {m for c in claims for m in c["spec"]["accessModes"]}
    assert modes == {"ReadWriteMany": {"ReadWriteMany"}, "ReadWriteOnce": {"ReadWriteOnce"}}
    bad = CliRunner().invoke(
        app, ["render", "k8s", "--out", str(tmp_path / "x"), "--fleet", str(fleet), *TAG,
              "--pvc-access-mode", "ReadOnlyMany"],
    )  # fmt: skip
    assert bad.exit_code == 2


def _docs(out: Path, kind: str) -> list[dict]:
    return [
        doc
        for f in sorted(out.rglob("*.yaml"))
        for doc in yaml.safe_load_all(f.read_text())
        if isinstance(doc, dict) and doc.get("kind") == kind
    ]


def test_render_front_door_flags(tmp_path: Path) -> None:
    """--node-port exposes the front door (not the webserver); image, replicas and the
    public URL reach its Deployment; compose takes the image and URL too."""
    fleet = fleet_dir(tmp_path)
    out = tmp_path / "k8s"
    args = ["render", "k8s", "--out", str(out), "--fleet", str(fleet), *TAG]
    args += ["--node-port", "30000"]
    args += ["--frontdoor-image", "reg.example.com/door:7", "--frontdoor-replicas", "3"]
    result = CliRunner().invoke(app, [*args, "--public-url", "https://dagster.example.com"])
    assert result.exit_code == 0, result.output
    node_ports = [s for s in _docs(out, "Service") if s["spec"].get("type") == "NodePort"]
    assert [s["metadata"]["name"] for s in node_ports] == ["dagfleet-frontdoor"]
    (door,) = [d for d in _docs(out, "Deployment") if d["metadata"]["name"] == "dagfleet-frontdoor"]
    assert door["spec"]["replicas"] == 3
    (container,) = door["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "reg.example.com/door:7"
    assert "https://dagster.example.com" in " ".join(
        container.get("args", []) + container.get("command", [])
    )
    compose = tmp_path / "compose"
    args = ["render", "compose", "--out", str(compose), "--fleet", str(fleet), *TAG]
    result = CliRunner().invoke(app, [*args, "--frontdoor-image", "reg.example.com/door:7"])
    assert result.exit_code == 0, result.output
    assert "reg.example.com/door:7" in (compose / "compose.yaml").read_text()


def test_render_dagfleet_api_flags(tmp_path: Path) -> None:
    """dagfleet's own API Deployment is on by default; --no-dagfleet-api drops it and
    --service-monitor adds a ServiceMonitor; deploy prints the API's Secret command."""
    fleet = fleet_dir(tmp_path)
    base = ["render", "k8s", "--fleet", str(fleet), "--tag", "v1"]
    on = CliRunner().invoke(app, [*base, "--out", str(tmp_path / "on"), "--service-monitor"])
    assert on.exit_code == 0, on.output
    names = [d["metadata"]["name"] for d in _docs(tmp_path / "on", "Deployment")]
    assert "dagfleet" in names and _docs(tmp_path / "on", "ServiceMonitor")
    off = CliRunner().invoke(app, [*base, "--out", str(tmp_path / "off"), "--no-dagfleet-api"])
    assert off.exit_code == 0, off.output
    assert "dagfleet" not in [d["metadata"]["name"] for d in _docs(tmp_path / "off", "Deployment")]
    assert not _docs(tmp_path / "off", "ServiceMonitor")


def per_env_fleet(tmp_path: Path, sales_url: str, pin: str = "v1.0.0") -> Path:
    """Repo `sales` follows `main` in A and `release` in B; `ops` is pinned in B."""
    root = tmp_path / "fleet"
    (root / "repos").mkdir(parents=True)
    fleet_doc = {"name": "shop", "environments": [{"name": "A", "branch": "A"}, {"name": "B"}]}
    (root / "fleet.yaml").write_text(yaml.safe_dump(fleet_doc))
    sales = {
        "name": "sales",
        "git_url": sales_url,
        "module_name": "demo.definitions",
        "branches": {"A": "main", "B": "release"},
    }
    ops = {"name": "ops", "git_url": "https://git.example.com/ops.git", "pins": {"B": pin}}
    (root / "repos" / "sales.yaml").write_text(yaml.safe_dump(sales))
    (root / "repos" / "ops.yaml").write_text(yaml.safe_dump(ops))
    return root


def render_workflow(tmp_path: Path, fleet: Path) -> dict[str, Any]:
    out = tmp_path / "ci"
    result = CliRunner().invoke(app, ["render", "ci", "--out", str(out), "--fleet", str(fleet)])
    assert result.exit_code == 0, result.output
    doc: dict[str, Any] = yaml.safe_load((out / ".github/workflows/dagfleet.yaml").read_text())
    return doc


def test_ci_validates_every_location_at_its_environments_ref(tmp_path: Path) -> None:
    fleet = per_env_fleet(tmp_path, "https://git.example.com/sales.git", pin="0123abcd")
    validate = render_workflow(tmp_path, fleet)["jobs"]["validate"]
    entries = {(e["repo"], e["env"], e["ref"]) for e in validate["strategy"]["matrix"]["include"]}
    assert entries == {
        ("sales", "A", "main"),
        ("sales", "B", "release"),
        ("ops", "A", "A"),  # the environment's default branch
        ("ops", "B", "0123abcd"),  # the pin wins over the branch
    }
    runs = [step.get("run", "") for step in validate["steps"]]
    assert 'dagfleet validate "$REPO" --env "$ENV" --fleet .' in runs
    assert validate["env"]["ENV"] == "${{ matrix.env }}"
    assert validate["env"]["REF"] == "${{ matrix.ref }}"


def test_ci_builds_each_ref_of_a_repo_and_tags_latest_from_the_first_env(
    tmp_path: Path,
) -> None:
    fleet = per_env_fleet(tmp_path, "https://git.example.com/sales.git")
    build = render_workflow(tmp_path, fleet)["jobs"]["build"]
    builds = [(e["repo"], e["ref"], e["latest"]) for e in build["strategy"]["matrix"]["include"]]
    assert builds == [
        ("ops", "A", True),
        ("ops", "v1.0.0", False),
        ("sales", "main", True),
        ("sales", "release", False),
    ]
    push = next(s for s in build["steps"] if s.get("uses", "").startswith("docker/build-push"))
    # Tagged with the code's commit (from the checkout step), not the fleet repo's github.sha.
    assert push["with"]["tags"] == "${{ steps.tags.outputs.tags }}"
    assert "github.sha" not in yaml.safe_dump(build)


def test_ci_checkout_step_checks_out_each_matrix_ref(tmp_path: Path) -> None:
    """Run the rendered checkout script (real git, local remotes) for every validate entry."""
    repo = CodeRepo(tmp_path / "remotes", name="sales", branches=("main", "release"))
    repo.commit({"release.txt": "r\n"}, "release only", branch="release")
    repo.push("release")
    tips = {"main": repo.tip("main"), "release": repo.tip("release")}
    fleet = per_env_fleet(tmp_path, repo.url)
    validate = render_workflow(tmp_path, fleet)["jobs"]["validate"]
    script = next(s["run"] for s in validate["steps"] if s.get("id") == "code")
    for entry in validate["strategy"]["matrix"]["include"]:
        if entry["repo"] != "sales":
            continue
        work = tmp_path / "job" / entry["env"]
        work.mkdir(parents=True)
        output = work / "github_output"
        env = {
            **os.environ,
            "REPO": entry["repo"],
            "REF": entry["ref"],
            "URL": entry["url"],
            "GITHUB_OUTPUT": str(output),
        }
        subprocess.run(["bash", "-e", "-c", script], cwd=work, env=env, check=True)
        assert output.read_text() == f"sha={tips[entry['ref']]}\n"
        checkout = work / "src" / "sales"
        assert (checkout / "release.txt").exists() == (entry["ref"] == "release")


def test_fetch_commands_reach_a_pinned_commit_behind_a_shallow_checkout(
    tmp_path: Path,
) -> None:
    repo = CodeRepo(tmp_path / "remotes", name="sales", branches=("main",))
    old = repo.tip("main")
    repo.commit({"new.txt": "n\n"}, "newer", branch="main")
    repo.push("main")
    dest = tmp_path / "checkout"
    for ref in ("main", old[:10], "main"):  # again over the same directory, as re-deploys do
        for cmd in fetch_commands(repo.url, ref, dest):
            subprocess.run(cmd, check=True)
        head = subprocess.run(
            ["git", "-C", str(dest), "rev-parse", "HEAD"], capture_output=True, text=True
        ).stdout.strip()
        assert head == (old if ref != "main" else repo.tip("main"))


def deploy_args(tmp_path: Path, fleet: Path, *extra: str) -> list[str]:
    out = str(tmp_path / "o")
    reg = ["--registry", "registry.example.com/team", "--tag", "v7"]
    return ["deploy", "k8s", "--out", out, "--fleet", str(fleet), *reg, *extra]


def test_deploy_prints_build_and_push_before_kubectl_and_helm(tmp_path: Path) -> None:
    fleet = per_env_fleet(tmp_path, "https://git.example.com/sales.git")
    result = CliRunner().invoke(app, deploy_args(tmp_path, fleet))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    out = tmp_path / "o"
    build = (
        f"docker build -f {out}/images/sales/Dockerfile "
        f"-t registry.example.com/team/sales:v7 {out}/src/sales"
    )
    assert build in lines
    assert "docker push registry.example.com/team/sales:v7" in lines
    # The image holds sales at its first environment's ref (main), not the env's branch A.
    assert f"git -C {out}/src/sales fetch --quiet --depth 1 {fleet_url(fleet)} main" in lines
    assert lines.index(build) < lines.index("docker push registry.example.com/team/sales:v7")
    assert lines.index("docker push registry.example.com/team/sales:v7") < next(
        i for i, line in enumerate(lines) if line.startswith("helm repo add")
    )
    assert 'dagster", "code-server"' in (out / "images" / "sales" / "Dockerfile").read_text()

    skipped = CliRunner().invoke(app, deploy_args(tmp_path / "s", fleet, "--skip-build"))
    assert skipped.exit_code == 0, skipped.output
    assert "docker" not in skipped.output and "git " not in skipped.output
    assert "kubectl apply -k" in skipped.output


def fleet_url(fleet: Path) -> str:
    doc: dict[str, str] = yaml.safe_load((fleet / "repos" / "sales.yaml").read_text())
    return doc["git_url"]


# docker, kubectl and helm reach a Docker engine and a cluster, neither of which exists on
# the machines the tests run on: these stand-ins (a mock of tools out of reach) record their
# argv so the test can check what --apply runs and in which order. git is the real one.
FAKE_TOOL = """#!/bin/sh
printf '%s\\n' "$(basename "$0") $*" >> "$DAGFLEET_TEST_TOOL_LOG"
"""


def fake_tools(tmp_path: Path, *tools: str) -> Path:
    bin_dir = tmp_path / "fakebin"
    bin_dir.mkdir()
    for tool in tools:
        (bin_dir / tool).write_text(FAKE_TOOL)
        (bin_dir / tool).chmod(0o755)
    return bin_dir


def test_deploy_apply_builds_pushes_then_deploys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stack: ExitStack
) -> None:
    repo = CodeRepo(tmp_path / "remotes", name="sales", branches=("main", "release"))
    # Served over git:// (a file:// URL is refused by the render: no cluster reaches it).
    served = stack.enter_context(git_daemon(tmp_path / "remotes", "sales.git"))
    url = f"{served}/sales.git"
    fleet = per_env_fleet(tmp_path, url)
    ops = {"name": "ops", "git_url": url, "branch": "release", "pins": {"B": "v1.0.0"}}
    (fleet / "repos" / "ops.yaml").write_text(yaml.safe_dump(ops))
    log = tmp_path / "tools.log"
    bin_dir = fake_tools(tmp_path, "docker", "kubectl", "helm")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("DAGFLEET_TEST_TOOL_LOG", str(log))
    result = CliRunner().invoke(app, deploy_args(tmp_path, fleet, "--apply"))
    assert result.exit_code == 0, result.output
    out = tmp_path / "o"
    image = "registry.example.com/team/{}:v7"
    assert log.read_text().splitlines() == [
        f"docker build -f {out}/images/ops/Dockerfile -t {image.format('ops')} {out}/src/ops",
        f"docker push {image.format('ops')}",
        f"docker build -f {out}/images/sales/Dockerfile -t {image.format('sales')} {out}/src/sales",
        f"docker push {image.format('sales')}",
        f"helm repo add --force-update dagster {HELM_REPO_URL}",
        "helm repo update dagster",
        f"kubectl apply -k {out}/manifests",
        f"helm upgrade --install dagster dagster/dagster --version {DEFAULT_DAGSTER_VERSION} "
        "--namespace shop "
        f"--values {out}/values.yaml --wait",
    ]
    # The build contexts the real git fetched: each repo at the ref of its first environment.
    for name, branch in (("sales", "main"), ("ops", "release")):
        head = subprocess.run(
            ["git", "-C", str(out / "src" / name), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        assert head == repo.tip(branch), name


def test_deploy_apply_names_every_missing_tool(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "git").symlink_to(shutil.which("git") or "/usr/bin/git")
    monkeypatch.setenv("PATH", str(bin_dir))
    fleet = str(fleet_dir(tmp_path))
    args = ["deploy", "k8s", "--out", str(tmp_path / "o"), "--fleet", fleet, "--apply", *TAG]
    built = CliRunner().invoke(app, args)
    assert built.exit_code == 1
    assert "docker, kubectl and helm not found on PATH" in built.output
    assert "--skip-build" in built.output
    skipped = CliRunner().invoke(app, [*args, "--skip-build"])
    assert skipped.exit_code == 1
    assert "cannot apply: kubectl and helm not found on PATH" in skipped.output
