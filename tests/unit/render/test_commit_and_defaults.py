"""Issue 15, items 1, 3 and 6: a location pinned to one exact commit, runs at that commit,
and safe defaults (chart version, explicit image tags, no local git URLs, the image's Python)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from dagfleet.cli import app
from dagfleet.cli.render import deploy_commands
from dagfleet.render import K8sOptions, render_dockerfile, render_flux, render_k8s
from dagfleet.render import common as c
from dagfleet.render.dockerfile import python_from_files
from dagfleet.render.flux import FluxOptions
from dagfleet.render.options import DEFAULT_DAGSTER_VERSION
from dagfleet.render.write import texts
from dagfleet.spec.defaults import default_fleet_document, medallion_repo_document
from tests.unit.render.fleets import default_fleet, make_fleet, three_repo_fleet
from tests.unit.render.test_properties import manifest_docs

pytestmark = pytest.mark.unit

SHA = "0123456789abcdef0123456789abcdef01234567"
OTHER = "fedcba9876543210fedcba9876543210fedcba98"


def deployments(opts: K8sOptions) -> dict[str, dict[str, Any]]:
    docs = manifest_docs(texts(render_k8s(default_fleet(), opts)))
    return {
        d["metadata"]["name"]: d
        for d in docs
        if d["kind"] == "Deployment"
        and d["metadata"]["labels"].get("app.kubernetes.io/component") == "code-server"
    }


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value") for e in container["env"]}


def context_of(deployment: dict[str, Any]) -> dict[str, Any]:
    (server,) = deployment["spec"]["template"]["spec"]["containers"]
    out: dict[str, Any] = json.loads(env_of(server)["DAGSTER_CONTAINER_CONTEXT"])["k8s"]
    return out


def test_a_pinned_location_runs_exactly_its_commit_and_rolls() -> None:
    found = deployments(K8sOptions(image_tag="v1", commits={"medallion-A": SHA}))
    pinned, following = found["medallion-a"], found["medallion-b"]
    spec = pinned["spec"]
    template = spec["template"]
    # The commit is readable on the Deployment and on its pods.
    for meta in (pinned["metadata"], template["metadata"]):
        assert meta["labels"]["dagfleet.dev/commit"] == SHA
        assert meta["annotations"] == {"dagfleet.dev/commit": SHA, "dagfleet.dev/ref": "A"}
    assert "dagfleet.dev/commit" not in spec["selector"]["matchLabels"]
    # The old pod serves until the new one is Ready.
    assert spec["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
    }
    assert spec["progressDeadlineSeconds"] > 0
    # One checkout of exactly that commit: no sidecar following a branch, no webhook.
    (sync,) = template["spec"]["initContainers"]
    assert f"--ref={SHA}" in sync["args"] and "--one-time" in sync["args"]
    assert "restartPolicy" not in sync
    assert not [a for a in sync["args"] if a.startswith(("--period", "--webhook"))]
    (server,) = template["spec"]["containers"]
    env = env_of(server)
    assert env["DAGFLEET_COMMIT"] == SHA
    assert "DAGFLEET_RELOAD_PORT" not in env
    # Ready only once the definitions loaded (the launcher's gRPC probe).
    assert server["readinessProbe"]["exec"]["command"] == ["python", c.LAUNCHER_PATH, "--probe"]
    # Its runs check out the same commit and carry it.
    context = context_of(pinned)
    (run_sync,) = context["run_k8s_config"]["pod_spec_config"]["init_containers"]
    assert f"--ref={SHA}" in run_sync["args"] and "--one-time" in run_sync["args"]
    assert context["labels"]["dagfleet.dev/commit"] == SHA
    assert {"name": "DAGFLEET_COMMIT", "value": SHA} in context["env"]

    # A location not listed keeps today's behaviour.
    assert following["spec"]["strategy"] == {"type": "Recreate"}
    assert "dagfleet.dev/commit" not in following["metadata"]["labels"]
    (sidecar,) = following["spec"]["template"]["spec"]["initContainers"]
    assert sidecar["restartPolicy"] == "Always" and "--ref=B" in sidecar["args"]
    (server_b,) = following["spec"]["template"]["spec"]["containers"]
    assert "grpc-health-check" in server_b["readinessProbe"]["exec"]["command"]


def test_a_new_commit_is_a_new_pod_template() -> None:
    first = deployments(K8sOptions(image_tag="v1", commits={"medallion-A": SHA}))
    second = deployments(K8sOptions(image_tag="v1", commits={"medallion-A": OTHER}))
    a, b = first["medallion-a"], second["medallion-a"]
    assert a["spec"]["template"] != b["spec"]["template"]
    assert a["spec"]["selector"] == b["spec"]["selector"]
    assert first["medallion-b"] == second["medallion-b"]


@pytest.mark.parametrize("commit", ["A", "main", SHA[:12], SHA.upper(), SHA + "0"])
def test_a_pin_must_be_a_full_commit(commit: str) -> None:
    with pytest.raises(c.RenderError, match=r"medallion-A.*full 40-hex commit"):
        render_k8s(default_fleet(), K8sOptions(image_tag="v1", commits={"medallion-A": commit}))


@pytest.mark.parametrize("name", ["medallion-C", "medallion-a", "playground-A"])
def test_a_pin_must_name_a_location_that_can_be_pinned(name: str) -> None:
    with pytest.raises(c.RenderError, match=rf"commits: {name}: not a location"):
        render_k8s(default_fleet(), K8sOptions(image_tag="v1", commits={name: SHA}))


@pytest.mark.parametrize(
    ("url", "local"),
    [
        ("file:///srv/git/medallion.git", True),
        ("/srv/git/medallion.git", True),
        ("./medallion", True),
        ("../medallion.git", True),
        ("~/code/medallion", True),
        ("medallion", True),
        ("https://git.example.com/data/medallion.git", False),
        ("ssh://git@git.example.com/data/medallion.git", False),
        ("git@git.example.com:data/medallion.git", False),
        ("git://127.0.0.1:9418/medallion.git", False),
    ],
)
def test_local_git_urls(url: str, local: bool) -> None:
    assert c.is_local_git_url(url) is local


def local_url_fleet() -> Any:
    return make_fleet(default_fleet_document(), [medallion_repo_document("file:///srv/medallion")])


def test_a_local_git_url_is_an_error_naming_the_file_field_and_fix() -> None:
    with pytest.raises(c.RenderError) as err:
        render_k8s(local_url_fleet(), K8sOptions(image_tag="v1"))
    message = str(err.value)
    assert message.startswith("repos/medallion.yaml: git_url: file:///srv/medallion")
    assert "git -C /srv/medallion push" in message and "set git_url" in message
    with pytest.raises(c.RenderError):
        render_flux(local_url_fleet(), FluxOptions(k8s=K8sOptions(image_tag="v1")))


def test_the_chart_version_is_pinned_and_overridable() -> None:
    def chart(opts: FluxOptions) -> dict[str, Any]:
        files = texts(render_flux(three_repo_fleet(), opts))
        docs = list(yaml.safe_load_all(files["manifests/instance/release.yaml"]))
        (release,) = [d for d in docs if d["kind"] == "HelmRelease"]
        spec: dict[str, Any] = release["spec"]["chart"]["spec"]
        return spec

    assert chart(FluxOptions())["version"] == DEFAULT_DAGSTER_VERSION
    assert chart(FluxOptions(k8s=K8sOptions(chart_version="1.13.2")))["version"] == "1.13.2"
    assert chart(FluxOptions(chart_version="1.12.0"))["version"] == "1.12.0"
    (helm,) = [cmd for cmd in deploy_commands(default_fleet(), Path("o"), K8sOptions()) if
               cmd[:2] == ["helm", "upgrade"]]  # fmt: skip
    assert helm[helm.index("--version") + 1] == DEFAULT_DAGSTER_VERSION


def write_fleet(root: Path, git_url: str) -> Path:
    (root / "repos").mkdir(parents=True)
    (root / "fleet.yaml").write_text(yaml.safe_dump(default_fleet_document()))
    (root / "repos" / "medallion.yaml").write_text(yaml.safe_dump(medallion_repo_document(git_url)))
    return root


@pytest.mark.parametrize("target", ["k8s", "flux", "ecs", "compose"])
def test_cli_requires_a_tag_and_refuses_local_git_urls(tmp_path: Path, target: str) -> None:
    remote = write_fleet(tmp_path / "remote", "https://git.example.com/data/medallion.git")
    args = ["render", target, "--out", str(tmp_path / "o"), "--fleet", str(remote)]
    untagged = CliRunner().invoke(app, args)
    assert untagged.exit_code == 2 and "--tag is required" in untagged.output
    assert not (tmp_path / "o").exists()
    assert CliRunner().invoke(app, [*args, "--tag", "v1"]).exit_code == 0

    local = write_fleet(tmp_path / "local", "file:///srv/medallion")
    args = ["render", target, "--out", str(tmp_path / "x"), "--fleet", str(local), "--tag", "v1"]
    refused = CliRunner().invoke(app, args)
    assert refused.exit_code == 2, refused.output
    assert "repos/medallion.yaml: git_url: file:///srv/medallion" in refused.output
    assert not (tmp_path / "x").exists()


def test_cli_commit_flag_pins_a_location(tmp_path: Path) -> None:
    fleet = write_fleet(tmp_path / "f", "https://git.example.com/data/medallion.git")
    out = tmp_path / "o"
    args = ["render", "k8s", "--out", str(out), "--fleet", str(fleet), "--tag", "v1"]
    result = CliRunner().invoke(app, [*args, "--commit", f"medallion-A={SHA}"])
    assert result.exit_code == 0, result.output
    doc = yaml.safe_load_all((out / "manifests" / "a" / "medallion-a.yaml").read_text())
    deployment = next(d for d in doc if d["kind"] == "Deployment")
    assert deployment["metadata"]["labels"]["dagfleet.dev/commit"] == SHA
    bad = CliRunner().invoke(app, [*args, "--commit", "medallion-A=main"])
    assert bad.exit_code == 2 and "full 40-hex commit" in bad.output
    malformed = CliRunner().invoke(app, [*args, "--commit", SHA])
    assert malformed.exit_code == 2 and "LOCATION=SHA" in malformed.output


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({}, None),
        ({".python-version": "3.12\n"}, "3.12"),
        ({".python-version": "3.12.4\n3.11\n"}, "3.12.4"),
        ({".python-version": "cpython-3.13"}, "3.13"),
        ({".python-version": "3.12", "pyproject.toml": '[project]\nrequires-python=">=3.10"'},
         "3.12"),
        ({"pyproject.toml": '[project]\nrequires-python = ">=3.10"\n'}, "3.11"),
        ({"pyproject.toml": '[project]\nrequires-python = ">=3.12"\n'}, "3.13"),
        ({"pyproject.toml": '[project]\nrequires-python = ">=3.10,<3.11"\n'}, "3.10"),
        ({"pyproject.toml": '[project]\nrequires-python = "~=3.12.1"\n'}, "3.12"),
        ({"pyproject.toml": '[project]\nrequires-python = "!=3.11.*,>=3.10"\n'}, "3.13"),
        ({"pyproject.toml": '[project]\nname = "x"\n'}, None),
    ],
)  # fmt: skip
def test_python_from_files(files: dict[str, str], expected: str | None) -> None:
    assert python_from_files(files) == expected


def test_python_from_files_names_the_file_it_cannot_use() -> None:
    with pytest.raises(ValueError, match=r"proj/\.python-version: 'pypy3\.10'"):
        python_from_files({".python-version": "pypy3.10"}, "proj")
    with pytest.raises(ValueError, match=r"proj/pyproject\.toml: project\.requires-python"):
        python_from_files({"pyproject.toml": '[project]\nrequires-python = "<3"\n'}, "proj")


def test_dockerfile_python_follows_the_repo(tmp_path: Path) -> None:
    fleet = default_fleet()
    assert "\nFROM python:3.11-slim\n" in render_dockerfile(fleet, "medallion")["Dockerfile"]
    text = render_dockerfile(fleet, "medallion", "3.12")["Dockerfile"]
    assert "\nFROM python:3.12-slim\n" in text

    root = write_fleet(tmp_path / "f", "https://git.example.com/data/medallion.git")
    source = tmp_path / "src"
    source.mkdir()
    (source / ".python-version").write_text("3.13\n")
    args = ["render", "dockerfile", "medallion", "--fleet", str(root)]
    from_source = CliRunner().invoke(
        app, [*args, "--out", str(tmp_path / "a"), "--source", str(source)]
    )
    assert from_source.exit_code == 0, from_source.output
    assert "\nFROM python:3.13-slim\n" in (tmp_path / "a" / "Dockerfile").read_text()
    explicit = CliRunner().invoke(
        app, [*args, "--out", str(tmp_path / "b"), "--source", str(source), "--python", "3.12"]
    )
    assert explicit.exit_code == 0, explicit.output
    assert "\nFROM python:3.12-slim\n" in (tmp_path / "b" / "Dockerfile").read_text()
    bogus = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "c"), "--python", "latest"])
    assert bogus.exit_code == 2 and "--python latest" in bogus.output
