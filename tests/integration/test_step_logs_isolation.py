"""Where the rendered instances put step logs is where the platforms let each run write.

- ECS: the keys dagfleet_runtime's LocationS3ComputeLogManager computes for a run of
  a location (a real manager on a real instance, from the ECS dagster.yaml) are
  allowed by the IAM policy of the task role that location's run tasks get (its
  container context), and by no other location's; the instance role (webserver,
  daemon) may read and list every location's logs/ and nothing else of theirs, and
  stays under IAM's size limit for a large fleet (cfn-lint).
- Kubernetes: the chart values naming the manager (the chart's CustomComputeLogManager
  and the webserver/daemon image) pass the vendored chart's values schema.
- The repo images: the Dockerfile carries dagfleet-runtime's modules verbatim, and
  the step that puts them on the venv's path does so in a real virtualenv.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import pytest
import yaml
from dagster import DagsterInstance, DagsterRun
from dagster._core.storage.compute_log_manager import ComputeIOType

from dagfleet.render import compute_logs, render_ecs
from dagfleet.render import dockerfile as df
from dagfleet.render.helm_values import helm_values
from dagfleet.render.options import EcsOptions, K8sOptions
from dagfleet.render.write import texts
from dagfleet.spec import Fleet, FleetSpec, RepoSpec, StorageSpec
from tests.integration.test_render_validation import CHART, validate_chart_values

pytestmark = pytest.mark.integration

PARTITION = "arn:${AWS::Partition}:s3:::"


def fleet(tmp_path: Path, root: str | None) -> Fleet:
    storage = StorageSpec(root=root) if root else StorageSpec()
    spec = FleetSpec(
        name="lake",
        storage=storage,
        environments=[{"name": "dev"}, {"name": "prod-eu"}],  # type: ignore[list-item]
    )
    repos = {
        "medallion": RepoSpec(name="medallion", git_url="https://git.example.com/m.git"),
        "sales": RepoSpec(
            name="sales", git_url="https://git.example.com/s.git", s3_prefix="teams/sales"
        ),
    }
    return Fleet(root=str(tmp_path / "fleet"), spec=spec, repos=repos)


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _sub(value: Any) -> str:
    return value["Fn::Sub"] if isinstance(value, dict) else value


def allows(policy: dict[str, Any], action: str, arn: str, prefix: str | None = None) -> bool:
    """Whether an Allow statement grants `action` on `arn` (IAM `*` matches across '/');
    for s3:ListBucket, `prefix` must match the statement's s3:prefix condition."""
    for statement in policy["Statement"]:
        if statement["Effect"] != "Allow" or action not in _list(statement["Action"]):
            continue
        if not any(fnmatchcase(arn, _sub(r)) for r in _list(statement["Resource"])):
            continue
        wanted = statement.get("Condition", {}).get("StringLike", {}).get("s3:prefix")
        if wanted is None or (prefix is not None and any(fnmatchcase(prefix, w) for w in wanted)):
            return True
    return False


def role_policy(resources: dict[str, Any], role: str, name: str | None = None) -> dict[str, Any]:
    policies = resources[role]["Properties"]["Policies"]
    (doc,) = [p["PolicyDocument"] for p in policies if name is None or p["PolicyName"] == name]
    return dict(doc)


def run_task_role(resources: dict[str, Any], location: str) -> str:
    """The role the EcsRunLauncher gives the location's run tasks (its container context)."""
    lid = re.sub(r"[^A-Za-z0-9]", "", location.title())
    task = resources[f"TaskDefinition{lid}"]["Properties"]
    (container,) = task["ContainerDefinitions"]
    env = {e["Name"]: e["Value"] for e in container["Environment"]}
    context = json.loads(_sub(env["DAGSTER_CONTAINER_CONTEXT"]))
    arn = context["ecs"]["task_role_arn"]
    return str(re.fullmatch(r"\$\{(\w+)\.Arn\}", arn).group(1))  # type: ignore[union-attr]


def manager_keys(home: Path, section: dict[str, Any], locations: list[str]) -> dict[str, str]:
    """location -> the stdout key a real manager (ECS's dagster.yaml) gives its runs' steps."""
    config = {
        "storage": {"sqlite": {"base_dir": str(home / "storage")}},
        "compute_logs": {**section, "config": {**section["config"], "local_dir": str(home)}},
        "telemetry": {"enabled": False},
    }
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    out = {}
    with DagsterInstance.from_config(str(home)) as instance:
        manager = instance.compute_log_manager
        for location in locations:
            run = instance.add_run(DagsterRun(job_name="j", tags={"dagfleet/location": location}))
            log_key = manager.build_log_key_for_run(run.run_id, "step")
            out[location] = manager._s3_key(log_key, ComputeIOType.STDOUT)  # type: ignore[attr-defined]
    return out


@pytest.mark.parametrize("root", [None, "s3://lake-bucket/dagster"], ids=["bucket", "s3-root"])
def test_each_run_task_may_write_only_its_own_locations_step_logs(
    tmp_path: Path, root: str | None
) -> None:
    f = fleet(tmp_path, root)
    template = render_ecs(f, EcsOptions())["template.yaml"]
    resources = template["Resources"]
    (webserver,) = [
        d
        for d in resources["TaskDefinitionWebserver"]["Properties"]["ContainerDefinitions"]
        if d["Name"] == "webserver"
    ]
    (text,) = [e["Value"] for e in webserver["Environment"] if e["Name"] == "DAGSTER_YAML"]
    section = yaml.safe_load(text)["compute_logs"]
    assert section["class"] == compute_logs.CLASS
    bucket = section["config"]["bucket"]
    locations = [loc.name for loc in f.locations()]
    keys = manager_keys(tmp_path / "home", section, locations)
    base = "dagster/" if root else ""
    assert keys["sales-prod-eu"].startswith(f"{base}prod-eu/teams/sales/logs/")
    assert keys["medallion-dev"].startswith(f"{base}dev/repos/medallion/logs/")
    instance = role_policy(resources, "TaskRoleInstance", "step-logs")
    for location, key in keys.items():
        arn = f"{PARTITION}{bucket}/{key}"
        own = role_policy(resources, run_task_role(resources, location))
        assert allows(own, "s3:PutObject", arn) and allows(own, "s3:GetObject", arn), location
        others = [o for o in locations if o != location]
        for other in others:
            theirs = role_policy(resources, run_task_role(resources, other))
            assert not allows(theirs, "s3:PutObject", arn), (other, key)
            assert not allows(theirs, "s3:GetObject", arn), (other, key)
        directory = key.rsplit("/", 1)[0] + "/"
        assert allows(instance, "s3:GetObject", arn), key
        assert allows(instance, "s3:ListBucket", f"{PARTITION}{bucket}", directory), key
    # ...and nothing else of the locations' prefixes
    data = f"{PARTITION}{bucket}/{base}dev/repos/medallion/assets/x.parquet"
    assert not allows(instance, "s3:GetObject", data)


@pytest.mark.slow
def test_a_large_fleets_instance_role_stays_under_iams_size_limit(tmp_path: Path) -> None:
    """Past STEP_LOGS_EXPLICIT_MAX locations the default-prefix repos' logs/ are named per
    environment with a wildcard; every location's step logs stay readable."""
    repos = {
        f"repo{i:02d}": RepoSpec(name=f"repo{i:02d}", git_url="https://git.example.com/r.git")
        for i in range(40)
    }
    repos["sales"] = RepoSpec(
        name="sales", git_url="https://git.example.com/s.git", s3_prefix="teams/sales"
    )
    spec = FleetSpec(
        name="lake",
        storage=StorageSpec(root="s3://lake-bucket/dagster"),
        environments=[{"name": "dev"}, {"name": "prod-eu"}],  # type: ignore[list-item]
    )
    f = Fleet(root=str(tmp_path / "fleet"), spec=spec, repos=repos)
    resources = render_ecs(f, EcsOptions())["template.yaml"]["Resources"]
    policies = resources["TaskRoleInstance"]["Properties"]["Policies"]
    size = len(json.dumps([p["PolicyDocument"] for p in policies], separators=(",", ":")))
    print(f"instance role inline policies: {size} characters for {len(f.locations())} locations")
    assert size < 10_240
    instance = role_policy(resources, "TaskRoleInstance", "step-logs")
    for loc in f.locations():
        prefix = "teams/sales" if loc.repo == "sales" else f"repos/{loc.repo}"
        key = f"dagster/{loc.env}/{prefix}/logs/run/compute_logs/step.out"
        assert allows(instance, "s3:GetObject", f"{PARTITION}lake-bucket/{key}"), key
    other = f"{PARTITION}lake-bucket/dagster/dev/teams/sales/assets/x.parquet"
    assert not allows(instance, "s3:GetObject", other)
    path = tmp_path / "template.yaml"
    path.write_text(texts(render_ecs(f, EcsOptions()))["template.yaml"])
    lint = subprocess.run(
        [str(Path(sys.executable).parent / "cfn-lint"), "--regions", "eu-west-1", "--", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr


def test_the_chart_values_naming_dagfleets_manager_pass_the_chart_schema(tmp_path: Path) -> None:
    values = helm_values(fleet(tmp_path, "s3://lake-bucket/dagster"), K8sOptions())
    assert values["computeLogManager"]["type"] == "CustomComputeLogManager"
    assert "image" in values["dagsterWebserver"] and "image" in values["dagsterDaemon"]
    validate_chart_values(values, CHART)


def _heredocs(text: str) -> dict[str, str]:
    """`COPY <<'DELIM' dest` bodies of a Dockerfile, by destination."""
    out = {}
    for match in re.finditer(r"^COPY <<'(\w+)' (\S+)\n(.*?)^\1$", text, re.M | re.S):
        out[match.group(2)] = match.group(3)
    return out


def test_the_repo_image_carries_dagfleet_runtime_on_its_venvs_path(tmp_path: Path) -> None:
    f = fleet(tmp_path, "s3://lake-bucket/dagster")
    text = df.render_dockerfile(f, "sales")["Dockerfile"]
    files = _heredocs(text)
    package = f"{df.RUNTIME_DIR}/{df.RUNTIME_PACKAGE}/"
    embedded = {
        dest[len(package) :]: body for dest, body in files.items() if dest.startswith(package)
    }
    assert embedded == df.runtime_sources()
    assert "s3_compute_logs.py" in embedded and "locations.py" in embedded
    # The RUN that adds the .pth, after the project's install, run in a real venv
    # (with the runtime's directory moved under tmp_path).
    (run,) = [line for line in text.splitlines() if df.RUNTIME_PTH in line]
    lines = text.splitlines()
    assert lines.index(run) > lines.index(f"RUN sh {df.INSTALL_PATH} project")
    runtime = tmp_path / "runtime"
    for name, body in embedded.items():
        (runtime / df.RUNTIME_PACKAGE).mkdir(parents=True, exist_ok=True)
        (runtime / df.RUNTIME_PACKAGE / name).write_text(body)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    command = run.removeprefix("RUN ").replace(df.RUNTIME_DIR, str(runtime))
    subprocess.run(command.replace("python -c", f"{python} -c", 1), shell=True, check=True)
    found = subprocess.run(
        [python, "-c", "import importlib.util as u; print(u.find_spec('dagfleet_runtime').origin)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert found == str(runtime / df.RUNTIME_PACKAGE / "__init__.py")
