"""`dagfleet render TARGET --out DIR` and `dagfleet deploy k8s --out DIR [--apply]`.

Rendering is pure (dagfleet.render); this module loads the fleet, maps flags to
render options, writes the files and, for deploy, prints or runs the commands
of seed 001's build-and-deploy flow: per repo git fetch, docker build and
docker push (unless --skip-build), then kubectl and helm.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from dagfleet.render import (
    ComposeOptions,
    EcsOptions,
    K8sOptions,
    Rendered,
    render_ci,
    render_compose,
    render_dockerfile,
    render_ecs,
    render_flux,
    render_k8s,
)
from dagfleet.render import options as o
from dagfleet.render.ci import fetch_commands, image_builds
from dagfleet.render.common import RenderError, require_remote_git_urls
from dagfleet.render.flux import HELM_REPO_URL, FluxOptions
from dagfleet.render.write import write
from dagfleet.spec import Fleet, SpecError, load_fleet

app = typer.Typer(no_args_is_help=True)
deploy_app = typer.Typer(no_args_is_help=True)

Out = Annotated[Path, typer.Option("--out", help="Directory to write the rendered files to.")]
FleetDir = Annotated[Path, typer.Option("--fleet", help="Directory holding fleet.yaml.")]
Registry = Annotated[str, typer.Option(help="Image registry; images are <registry>/<repo>:<tag>.")]
Tag = Annotated[
    str | None,
    typer.Option(
        help="Image tag the deployments run (required: images by explicit version, e.g. "
        "the code commit SHA `render ci` tags each image with, or a release version)."
    ),
]
ChartVersion = Annotated[
    str | None,
    typer.Option(
        help="Version of the dagster Helm chart (default: the chart of the dagster "
        f"version the images pin, {o.DEFAULT_DAGSTER_VERSION})."
    ),
]
Commit = Annotated[
    list[str] | None,
    typer.Option(
        "--commit",
        help="LOCATION=SHA (repeatable): run the location at exactly this full commit "
        "(rolling update, Ready once its definitions load, its runs check out the same commit).",
    ),
]
KubeVersion = Annotated[str, typer.Option(help="Kubernetes version the output targets.")]
Cnpg = Annotated[bool, typer.Option(help="Postgres via CloudNativePG (else a StatefulSet).")]
NodePort = Annotated[
    int | None,
    typer.Option(
        help="Expose the front door on this NodePort (seed 001: 30000); the webserver "
        "stays ClusterIP."
    ),
]
FrontDoorImage = Annotated[
    str | None,
    typer.Option(
        help="Image with dagfleet installed for the front door (default <registry>/dagfleet:<tag>)."
    ),
]
FrontDoorReplicas = Annotated[
    int, typer.Option(min=1, help="Front door replicas (they share the session key Secret).")
]
DagfleetApi = Annotated[
    bool,
    typer.Option(
        "--dagfleet-api/--no-dagfleet-api",
        help="Run dagfleet's API, webhook route and metrics in the cluster (read-only fleet).",
    ),
]
ServiceMonitor = Annotated[
    bool,
    typer.Option(help="Render a ServiceMonitor for dagfleet's metrics (Prometheus Operator)."),
]
DeployRepoOpt = Annotated[
    str | None,
    typer.Option(
        "--deploy-repo",
        help="Deploy repository (git URL) dagfleet in the cluster releases into on push "
        "webhooks, as `dagfleet release run` does (credentials: Secret dagfleet-deploy-repo).",
    ),
]
DeployBranchOpt = Annotated[str, typer.Option(help="Branch of the --deploy-repo.")]
DeployPathOpt = Annotated[str, typer.Option(help="Directory in the --deploy-repo (default root).")]
PublicUrl = Annotated[
    str | None,
    typer.Option(
        help="How users reach the front door, e.g. https://dagster.example.com: Secure "
        "cookies and the single sign-on redirect URL."
    ),
]


AccessMode = Annotated[
    o.PvcAccessMode,
    typer.Option(
        "--pvc-access-mode",
        help="Access mode of the data PVCs: ReadWriteMany (pods on any node) or "
        "ReadWriteOnce (a one-node cluster, as in seed 001).",
    ),
]


def _load(fleet_dir: Path) -> Fleet:
    try:
        return load_fleet(fleet_dir)
    except SpecError as err:
        for problem in err.problems:
            typer.echo(str(problem), err=True)
        raise typer.Exit(2) from err


def _tag(tag: str | None) -> str:
    """--tag has no default: `latest` is whatever was pushed last, not a version."""
    if not tag:
        typer.echo(
            "--tag is required: deployments run images by explicit version. Pass the tag "
            "your images were pushed with, e.g. the code commit SHA `render ci` tags each "
            "image with (`--tag $(git -C <repo> rev-parse HEAD)`) or a release version.",
            err=True,
        )
        raise typer.Exit(2)
    return tag


def _commits(values: list[str] | None) -> dict[str, str]:
    out = {}
    for value in values or []:
        location, sep, sha = value.partition("=")
        if not sep or not location or not sha:
            typer.echo(
                f"--commit {value}: expected LOCATION=SHA (e.g. sales-prod=<40 hex>)", err=True
            )
            raise typer.Exit(2)
        out[location] = sha
    return out


def _render(render: Callable[[], Rendered]) -> Rendered:
    """Run a render; a RenderError (a local git URL, a short commit...) is exit 2."""
    try:
        return render()
    except RenderError as err:
        typer.echo(str(err), err=True)
        raise typer.Exit(2) from err


def _require_remote(fleet: Fleet, target: str) -> None:
    """Images for `target` are built from each repo's git_url (render ci, deploy k8s), so a
    path on this machine is refused here too (the k8s render refuses it itself)."""
    try:
        require_remote_git_urls(fleet, target)
    except RenderError as err:
        typer.echo(str(err), err=True)
        raise typer.Exit(2) from err


def _write(result: Rendered, out: Path) -> None:
    for path in write(result, out):
        typer.echo(str(path))


def _k8s_options(
    registry: str,
    tag: str | None,
    kube: str,
    cnpg: bool,
    node_port: int | None,
    access_mode: o.PvcAccessMode = o.DEFAULT_PVC_ACCESS_MODE,
    frontdoor_image: str | None = None,
    frontdoor_replicas: int = 1,
    public_url: str | None = None,
    commits: list[str] | None = None,
    chart_version: str | None = None,
    dagfleet_api: bool = True,
    service_monitor: bool = False,
    deploy: tuple[str | None, str, str] = (None, "main", ""),
) -> K8sOptions:
    return K8sOptions(
        registry=registry,
        image_tag=_tag(tag),
        commits=_commits(commits),
        chart_version=chart_version,
        kubernetes_version=kube,
        cnpg=cnpg,
        node_port=node_port,
        pvc_access_mode=access_mode,
        frontdoor_image=frontdoor_image,
        frontdoor_replicas=frontdoor_replicas,
        public_url=public_url,
        dagfleet_api=dagfleet_api,
        service_monitor=service_monitor,
        deploy_repo=deploy[0],
        deploy_branch=deploy[1],
        deploy_path=deploy[2],
    )


@app.command("k8s")
def k8s_cmd(
    out: Out,
    fleet: FleetDir = Path("."),
    registry: Registry = o.DEFAULT_REGISTRY,
    tag: Tag = None,
    kubernetes_version: KubeVersion = o.DEFAULT_KUBERNETES_VERSION,
    cnpg: Cnpg = True,
    node_port: NodePort = None,
    pvc_access_mode: AccessMode = o.DEFAULT_PVC_ACCESS_MODE,
    frontdoor_image: FrontDoorImage = None,
    frontdoor_replicas: FrontDoorReplicas = 1,
    public_url: PublicUrl = None,
    commit: Commit = None,
    dagfleet_api: DagfleetApi = True,
    service_monitor: ServiceMonitor = False,
    deploy_repo: DeployRepoOpt = None,
    deploy_branch: DeployBranchOpt = "main",
    deploy_path: DeployPathOpt = "",
) -> None:
    """Namespaces, code-server Deployments with git-sync, Postgres, PVCs and Helm values."""
    loaded = _load(fleet)
    opts = _k8s_options(
        registry,
        tag,
        kubernetes_version,
        cnpg,
        node_port,
        pvc_access_mode,
        frontdoor_image,
        frontdoor_replicas,
        public_url,
        commit,
        None,
        dagfleet_api,
        service_monitor,
        (deploy_repo, deploy_branch, deploy_path),
    )
    _write(_render(lambda: render_k8s(loaded, opts)), out)


@app.command("flux")
def flux_cmd(
    out: Out,
    fleet: FleetDir = Path("."),
    repo_url: Annotated[str, typer.Option(help="Git URL where the output is committed.")] = (
        FluxOptions.repo_url
    ),
    branch: Annotated[str, typer.Option(help="Branch Flux follows.")] = "main",
    interval: Annotated[str, typer.Option(help="GitRepository interval.")] = "5m",
    registry: Registry = o.DEFAULT_REGISTRY,
    tag: Tag = None,
    kubernetes_version: KubeVersion = o.DEFAULT_KUBERNETES_VERSION,
    cnpg: Cnpg = True,
    node_port: NodePort = None,
    pvc_access_mode: AccessMode = o.DEFAULT_PVC_ACCESS_MODE,
    frontdoor_image: FrontDoorImage = None,
    frontdoor_replicas: FrontDoorReplicas = 1,
    public_url: PublicUrl = None,
    commit: Commit = None,
    chart_version: ChartVersion = None,
    dagfleet_api: DagfleetApi = True,
    service_monitor: ServiceMonitor = False,
    deploy_repo: DeployRepoOpt = None,
    deploy_branch: DeployBranchOpt = "main",
    deploy_path: DeployPathOpt = "",
) -> None:
    """The Kubernetes render plus GitRepository, Kustomization, HelmRepository, HelmRelease."""
    loaded = _load(fleet)
    k8s = _k8s_options(
        registry,
        tag,
        kubernetes_version,
        cnpg,
        node_port,
        pvc_access_mode,
        frontdoor_image,
        frontdoor_replicas,
        public_url,
        commit,
        chart_version,
        dagfleet_api,
        service_monitor,
        (deploy_repo, deploy_branch, deploy_path),
    )
    opts = FluxOptions(repo_url=repo_url, branch=branch, interval=interval, k8s=k8s)
    _write(_render(lambda: render_flux(loaded, opts)), out)


@app.command("ecs")
def ecs_cmd(
    out: Out,
    fleet: FleetDir = Path("."),
    s3_bucket: Annotated[str, typer.Option(help="Bucket when storage is not s3://.")] = (
        o.DEFAULT_S3_BUCKET
    ),
    registry: Registry = o.DEFAULT_REGISTRY,
    tag: Tag = None,
    frontdoor_image: FrontDoorImage = None,
) -> None:
    """A CloudFormation template and the workspace.yaml it serves."""
    loaded = _load(fleet)
    opts = EcsOptions(
        registry=registry, image_tag=_tag(tag), s3_bucket=s3_bucket, frontdoor_image=frontdoor_image
    )
    _require_remote(loaded, "ECS")
    _write(_render(lambda: render_ecs(loaded, opts)), out)


@app.command("compose")
def compose_cmd(
    out: Out,
    fleet: FleetDir = Path("."),
    registry: Registry = o.DEFAULT_REGISTRY,
    tag: Tag = None,
    frontdoor_image: FrontDoorImage = None,
    public_url: PublicUrl = None,
) -> None:
    """compose.yaml: code servers, webserver, front door, daemon and Postgres per environment."""
    loaded = _load(fleet)
    opts = ComposeOptions(
        registry=registry,
        image_tag=_tag(tag),
        frontdoor_image=frontdoor_image,
        public_url=public_url,
    )
    _require_remote(loaded, "docker compose")
    _write(_render(lambda: render_compose(loaded, opts)), out)


@app.command("ci")
def ci_cmd(
    out: Out,
    fleet: FleetDir = Path("."),
    registry: Registry = o.DEFAULT_REGISTRY,
    dagfleet_source: Annotated[
        str,
        typer.Option(
            help="What CI installs dagfleet from (`uv tool install` requirement): "
            "a version pin, a wheel URL or git+https://...@tag."
        ),
    ] = "dagfleet",
    dagfleet_wheels: Annotated[
        str | None,
        typer.Option(
            help="Install dagfleet from the wheels `make dist` builds instead of the "
            "package index: a directory of the fleet repository holding them (committed) "
            "or a find-links URL. dagfleet is pinned to this dagfleet's version unless "
            "--dagfleet-source names another."
        ),
    ] = None,
) -> None:
    """A GitHub Actions workflow: validate, build images, push from main."""
    from importlib.metadata import version

    from dagfleet.render.ci import wheels_problem

    opts = o.CiOptions(
        registry=registry, dagfleet_source=dagfleet_source, dagfleet_wheels=dagfleet_wheels
    )
    loaded = _load(fleet)
    problem = wheels_problem(fleet, opts, version("dagfleet"))
    if problem:
        typer.echo(f"--dagfleet-wheels: {problem}", err=True)
        raise typer.Exit(2)
    _write(render_ci(loaded, opts), out)


@app.command("dockerfile")
def dockerfile_cmd(
    repo: Annotated[str, typer.Argument(help="Repo name (repos/<name>.yaml).")],
    out: Out,
    fleet: FleetDir = Path("."),
    python: Annotated[
        str | None,
        typer.Option(help="The image's Python (X.Y or X.Y.Z); wins over --source."),
    ] = None,
    source: Annotated[
        Path | None,
        typer.Option(
            help="The repo's checkout: the image's Python follows its .python-version, "
            "else requires-python in pyproject.toml (without it or --python: 3.11)."
        ),
    ] = None,
) -> None:
    """A Dockerfile for one repo: uv, locked deps, non-root, dagster code-server start."""
    from dagfleet.render.dockerfile import python_from_files

    loaded = _load(fleet)
    if python is not None and not re.fullmatch(r"3\.\d+(\.\d+)?", python):
        typer.echo(
            f"--python {python}: expected a CPython version such as 3.12 or 3.12.4", err=True
        )
        raise typer.Exit(2)
    if python is None and source is not None and repo in loaded.repos:
        project = source / loaded.repos[repo].working_directory
        files = {
            name: (project / name).read_text(encoding="utf-8")
            for name in (".python-version", "pyproject.toml")
            if (project / name).is_file()
        }
        try:
            python = python_from_files(files, str(project))
        except ValueError as err:
            typer.echo(str(err), err=True)
            raise typer.Exit(2) from err
    try:
        result = render_dockerfile(loaded, repo, python)
    except KeyError as err:
        typer.echo(f"repos/{repo}.yaml: {err.args[0]}", err=True)
        raise typer.Exit(2) from err
    _write(result, out)


def build_commands(fleet: Fleet, out: Path, opts: K8sOptions) -> list[list[str]]:
    """Per repo, seed 001's build step: fetch the repo at the ref of the first environment it
    runs in (what `latest` holds in `render ci`), build the rendered Dockerfile, push."""
    commands = []
    for build in image_builds(fleet):
        if not build.latest:
            continue
        checkout = out / "src" / build.repo
        image = opts.repo_image(build.repo)
        dockerfile = out / "images" / build.repo / "Dockerfile"
        commands += fetch_commands(build.git_url, build.ref, checkout)
        commands.append(["docker", "build", "-f", str(dockerfile), "-t", image, str(checkout)])
        commands.append(["docker", "push", image])
    return commands


def build_files(fleet: Fleet) -> Rendered:
    """The Dockerfiles build_commands use, as `images/<repo>/Dockerfile`."""
    return {
        f"images/{b.repo}/Dockerfile": render_dockerfile(fleet, b.repo)["Dockerfile"]
        for b in image_builds(fleet)
        if b.latest
    }


def deploy_commands(fleet: Fleet, out: Path, opts: K8sOptions) -> list[list[str]]:
    from dagfleet.render.common import instance_namespace

    ns = instance_namespace(fleet)
    return [
        ["helm", "repo", "add", "--force-update", "dagster", HELM_REPO_URL],
        ["helm", "repo", "update", "dagster"],
        ["kubectl", "apply", "-k", str(out / "manifests")],
        [
            "helm", "upgrade", "--install", opts.release_name, "dagster/dagster",
            "--version", opts.helm_chart_version(),
            "--namespace", ns, "--values", str(out / "values.yaml"), "--wait",
        ],
    ]  # fmt: skip


def _missing_tools(commands: list[list[str]]) -> list[str]:
    needed = {cmd[0] for cmd in commands}
    return [t for t in ("git", "docker", "kubectl", "helm") if t in needed and not shutil.which(t)]


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


@deploy_app.command("k8s")
def deploy_k8s(
    out: Out,
    fleet: FleetDir = Path("."),
    apply: Annotated[
        bool, typer.Option(help="Run the commands (needs git, docker, kubectl and helm).")
    ] = False,
    skip_build: Annotated[
        bool, typer.Option("--skip-build", help="Deploy images already pushed: no docker.")
    ] = False,
    registry: Registry = o.DEFAULT_REGISTRY,
    tag: Tag = None,
    kubernetes_version: KubeVersion = o.DEFAULT_KUBERNETES_VERSION,
    cnpg: Cnpg = True,
    node_port: NodePort = None,
    pvc_access_mode: AccessMode = o.DEFAULT_PVC_ACCESS_MODE,
    frontdoor_image: FrontDoorImage = None,
    frontdoor_replicas: FrontDoorReplicas = 1,
    public_url: PublicUrl = None,
    commit: Commit = None,
    chart_version: ChartVersion = None,
    dagfleet_api: DagfleetApi = True,
    service_monitor: ServiceMonitor = False,
) -> None:
    """Render for Kubernetes, print the docker, kubectl and helm commands; --apply runs them."""
    from dagfleet.render.common import instance_namespace, namespace
    from dagfleet.render.k8s_dagfleet import secret_command as dagfleet_api_secret
    from dagfleet.render.k8s_frontdoor import secret_commands
    from dagfleet.render.k8s_location import git_credentials_commands

    loaded = _load(fleet)
    opts = _k8s_options(
        registry,
        tag,
        kubernetes_version,
        cnpg,
        node_port,
        pvc_access_mode,
        frontdoor_image,
        frontdoor_replicas,
        public_url,
        commit,
        chart_version,
        dagfleet_api,
        service_monitor,
    )
    _write(_render(lambda: render_k8s(loaded, opts)), out)
    builds = [] if skip_build else build_commands(loaded, out, opts)
    if builds:
        _write(build_files(loaded), out)
    commands = builds + deploy_commands(loaded, out, opts)
    typer.echo(
        "\n# Once: the Secret the instance database and the chart read (no value is rendered)"
    )
    typer.echo(
        "# kubectl -n "
        + shlex.quote(instance_namespace(loaded))
        + " create secret generic dagster-postgresql-secret --type=kubernetes.io/basic-auth"
        ' --from-literal=username=dagster --from-literal=password="$PW"'
        ' --from-literal=postgresql-password="$PW"'
    )
    typer.echo("# and in each environment namespace, where run pods read it by this name:")
    for env in loaded.spec.environments:
        typer.echo(
            "# kubectl -n "
            + shlex.quote(namespace(loaded, env.name))
            + " create secret generic dagster-postgresql-secret"
            + ' --from-literal=postgresql-password="$PW"'
        )
    typer.echo("# the front door's session key (and, optionally, users and tokens):")
    for line in secret_commands(loaded):
        typer.echo(f"# {line}")
    if opts.dagfleet_api:
        typer.echo("# dagfleet's API tokens (and, optionally, the webhook secret):")
        typer.echo(f"# {dagfleet_api_secret(loaded)}")
    git_secrets = git_credentials_commands(loaded)
    if git_secrets:
        typer.echo("# and each private repo's git credentials, which only git-sync mounts:")
        for line in git_secrets:
            typer.echo(f"# {line}")
    if builds:
        typer.echo("\n# Build and push the images (the repo at its first environment's ref):")
        for cmd in builds:
            typer.echo(shlex.join(cmd))
    typer.echo("\n# Deploy:")
    for cmd in commands[len(builds) :]:
        typer.echo(shlex.join(cmd))
    if not apply:
        return
    missing = _missing_tools(commands)
    if missing:
        hint = " (or --skip-build to deploy images already pushed)" if "docker" in missing else ""
        typer.echo(
            f"cannot apply: {_and(missing)} not found on PATH; install "
            f"{'them' if len(missing) > 1 else 'it'} or run the commands above yourself{hint}",
            err=True,
        )
        raise typer.Exit(1)
    for cmd in commands:
        typer.echo(f"$ {shlex.join(cmd)}")
        sys.stdout.flush()
        result = subprocess.run(cmd, check=False)
        if result.returncode != 0:
            typer.echo(f"failed ({result.returncode}): {shlex.join(cmd)}", err=True)
            raise typer.Exit(result.returncode)
    sys.stdout.flush()
