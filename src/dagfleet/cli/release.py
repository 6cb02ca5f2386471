"""`dagfleet release`: judge commits and write the accepted ones into a deploy repository.

    dagfleet release run --deploy-repo URL [--repo NAME] [--env E] [--commit SHA]
    dagfleet release promote REPO --from A --to B --deploy-repo URL
    dagfleet release status --deploy-repo URL

Runs offline (no `dagfleet up` needed): in CI, or in the cluster's dagfleet.
Exit codes as everywhere (docs/cli.md): 0 every judged commit was accepted (or
nothing changed), 1 a commit was rejected or the push failed, 2 bad input.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from dagfleet.cli import output
from dagfleet.cli.core import fleet_dir_or_exit, load_or_exit
from dagfleet.cli.guard import BAD_INPUT, FAILED
from dagfleet.cli.options import EnvOpt, FleetOpt, RepoArg
from dagfleet.cli.output import JsonOpt, OutputOpt

if TYPE_CHECKING:
    from dagfleet.release.deployrepo import DeployRepo
    from dagfleet.release.releaser import Report

app = typer.Typer(no_args_is_help=True)

DeployRepoOpt = Annotated[
    str,
    typer.Option(
        "--deploy-repo",
        envvar="DAGFLEET_DEPLOY_REPO",
        help="Git URL of the deploy repository Flux applies.",
    ),
]
PathOpt = Annotated[
    str,
    typer.Option(
        "--path",
        envvar="DAGFLEET_DEPLOY_PATH",
        help="Directory in the deploy repository (default: its root); Flux applies "
        "<path>/manifests.",
    ),
]
BranchOpt = Annotated[
    str,
    typer.Option(
        "--branch", envvar="DAGFLEET_DEPLOY_BRANCH", help="Branch of the deploy repository."
    ),
]
COLUMNS = ["LOCATION", "COMMIT", "RESULT", "SERVING", "MESSAGE"]


def _deploy(url: str, path: str, branch: str) -> DeployRepo:
    from dagfleet.release.deployrepo import DeployRepo

    clean = path.strip("/")
    if ".." in Path(clean).parts:
        output.error(f"--path {path!r}: must stay inside the deploy repository (no '..')")
        raise typer.Exit(BAD_INPUT)
    return DeployRepo(url, branch, clean)


def _report(report: Report, fmt: output.Format) -> None:
    def table(wide: bool) -> None:
        rows = [
            [
                o.location,
                output.short(o.commit, wide),
                o.result if o.result != "rejected" else f"rejected: {o.reason}",
                output.short(o.serving, wide),
                o.message,
            ]
            for o in report.outcomes
        ]
        output.print_table(COLUMNS, rows, wide, ["MESSAGE"])
        if report.deploy_commit:
            output.note(f"pushed {output.short(report.deploy_commit, wide)} to the deploy repo")
        else:
            output.note("the deploy repo is unchanged")

    data = {"outcomes": [asdict(o) for o in report.outcomes], "deploy_commit": report.deploy_commit}
    output.emit(data, fmt, table)
    if not report.ok:
        raise typer.Exit(FAILED)


@app.command("run")
def run_cmd(
    deploy_repo: DeployRepoOpt,
    repo: Annotated[str | None, typer.Option("--repo", help="Only this repo.")] = None,
    env: EnvOpt = None,
    commit: Annotated[
        str | None,
        typer.Option("--commit", help="Judge this full commit (needs --repo) instead of tips."),
    ] = None,
    path: PathOpt = "",
    branch: BranchOpt = "main",
    fleet: FleetOpt = None,
    fmt: OutputOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Judge each location's commit (install, build, load) and release the accepted ones."""
    from dagfleet.layout import Layout
    from dagfleet.release import releaser

    loaded = load_or_exit(fleet_dir_or_exit(fleet), "nothing was released")
    deploy = _deploy(deploy_repo, path, branch)
    try:
        report = releaser.run(
            loaded,
            Layout.for_fleet(Path(loaded.root)),
            deploy,
            repo=repo,
            env=env,
            commit=commit,
        )
    except releaser.ReleaseError as exc:
        output.error(str(exc))
        raise typer.Exit(exc.code) from None
    _report(report, output.resolve(fmt, as_json))


@app.command("promote")
def promote_cmd(
    repo: RepoArg,
    source: Annotated[str, typer.Option("--from", help="Environment whose released commit.")],
    target: Annotated[str, typer.Option("--to", help="Environment to release it to.")],
    deploy_repo: DeployRepoOpt,
    path: PathOpt = "",
    branch: BranchOpt = "main",
    fleet: FleetOpt = None,
    fmt: OutputOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Release to TO the commit FROM serves in the deploy repo, once it loads in TO."""
    from dagfleet.layout import Layout
    from dagfleet.release import releaser

    loaded = load_or_exit(fleet_dir_or_exit(fleet), "nothing was promoted")
    deploy = _deploy(deploy_repo, path, branch)
    try:
        report = releaser.promote(
            loaded,
            Layout.for_fleet(Path(loaded.root)),
            deploy,
            repo,
            source,
            target,
        )
    except releaser.ReleaseError as exc:
        output.error(str(exc))
        raise typer.Exit(exc.code) from None
    _report(report, output.resolve(fmt, as_json))


@app.command("status")
def status_cmd(
    deploy_repo: DeployRepoOpt,
    path: PathOpt = "",
    branch: BranchOpt = "main",
    fmt: OutputOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Which commit each location serves in the deploy repo, and its last judgement."""
    from dagfleet.gitops.git import GitError
    from dagfleet.release import releaser

    deploy = _deploy(deploy_repo, path, branch)
    try:
        rows = releaser.status(deploy)
    except GitError as exc:
        output.error(f"deploy repo {deploy_repo}: {exc}")
        raise typer.Exit(FAILED) from None
    except releaser.ReleaseError as exc:
        output.error(str(exc))
        raise typer.Exit(exc.code) from None

    def table(wide: bool) -> None:
        if not rows:
            output.line("nothing released yet")
            return
        cells = [
            [
                str(r["location"]),
                output.short(str(r["commit"]) if r.get("commit") else None, wide),
                "yes" if r.get("ready") else "no",
                "ok" if r.get("synced") == "True" else str(r.get("reason") or "-"),
                str(r.get("message") or ""),
            ]
            for r in rows
        ]
        output.print_table(
            ["LOCATION", "SERVING", "READY", "LAST", "MESSAGE"], cells, wide, ["MESSAGE"]
        )

    output.emit(rows, output.resolve(fmt, as_json), table)
