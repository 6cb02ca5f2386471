"""`render ci`: a GitHub Actions workflow for the fleet repository, shaped like seed 002.

The workflow lives in the fleet repo (fleet.yaml + repos/*.yaml), not in a code
repo as in seed 002. So `github.sha` is a fleet commit and says nothing about
the code: every job checks a code repo out at the ref the fleet files give it
(the environment's pin, else its branch: `branches[env]`, the repo's `branch`,
the environment's default branch, `main`), and images are tagged with the
commit of the code they hold.

Triggers: push to main and pull requests to main. Jobs:
- state-files: fails when a `*.tfstate*` file is committed;
- validate (matrix over locations, one per repo and environment): `dagfleet
  validate REPO --env ENV`: the repo installed as dagfleet installs it (with or
  without uv.lock), its build steps run, the definitions load at that
  environment's ref, in that environment. A repo that declares no build steps
  also gets `dbt parse` in every dbt project of its checkout, with `uv run
  --locked` when its project has a uv.lock (skipped with a notice otherwise:
  declare `dbt parse` as a build step); a repo with build steps is not parsed
  again, its steps say what its build needs;
- build (matrix over each repo's distinct refs): checks the repo out at the
  ref, renders its Dockerfile with dagfleet (which installs either project
  shape and runs the build steps, see render.dockerfile), builds it tagged
  with the code's commit SHA, plus `latest` for the ref of the first environment the repo runs
  in (the tag deployments run by default; git-sync brings every environment's
  own code), and pushes only on a push to main (pull requests build without
  pushing).
The registry is the `registry` render option (default ghcr.io/dagfleet) and
dagfleet is installed from `dagfleet_source`, or from the wheels `make dist`
builds when `dagfleet_wheels` names where they are (a directory of the fleet
repository or a find-links URL; see install_command); credentials come from the
workflow's GITHUB_TOKEN, never from the render.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

from dagfleet.render import common as c
from dagfleet.render.options import CiOptions
from dagfleet.spec.models import Fleet

CHECKOUT = "actions/checkout@v5"
SETUP_UV = "astral-sh/setup-uv@v5"
ON_MAIN = "github.event_name == 'push' && github.ref == 'refs/heads/main'"
# A pin is a commit SHA (names.check_pin) or a tag; a SHA cannot be fetched shallowly by name.
SHA_PATTERN = "^[0-9a-f]{7,40}$"
FULL_DEPTH = 2147483647


@dataclass(frozen=True)
class ImageBuild:
    """One image to build: `repo` checked out at `ref` (a pin, branch or tag)."""

    repo: str
    git_url: str
    ref: str
    latest: bool


def image_builds(fleet: Fleet) -> list[ImageBuild]:
    """Each repo's distinct refs over the environments it runs in, in environment order.

    The first is the repo's `latest`: deployments run one image per repo and
    git-sync brings each environment's code, so the image only has to carry the
    dependencies, taken from the first environment's ref.
    """
    out: list[ImageBuild] = []
    seen: set[tuple[str, str]] = set()
    for loc in fleet.locations():
        ref = loc.pin or loc.ref
        if loc.playground or (loc.repo, ref) in seen:
            continue
        first = all(b.repo != loc.repo for b in out)
        seen.add((loc.repo, ref))
        out.append(ImageBuild(loc.repo, fleet.repos[loc.repo].git_url, ref, first))
    return out


def fetch_commands(git_url: str, ref: str, dest: Path) -> list[list[str]]:
    """Check `ref` of `git_url` out at `dest`; safe to run again over an earlier checkout."""
    git = ["git", "-C", str(dest)]
    if re.match(SHA_PATTERN, ref):
        heads, tags = "+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*"
        # Full history (2147483647 is git's "unshallow", valid on complete clones too).
        fetch = [*git, "fetch", "--quiet", f"--depth={FULL_DEPTH}", git_url, heads, tags]
        target = ref
    else:
        fetch, target = [*git, "fetch", "--quiet", "--depth", "1", git_url, ref], "FETCH_HEAD"
    return [
        ["git", "init", "--quiet", str(dest)],
        fetch,
        [*git, "checkout", "--quiet", "--force", "--detach", target],
    ]


# The shell form of fetch_commands for a matrix job ($URL, $REF, $REPO from the job env).
CHECKOUT_SCRIPT = (
    'git init --quiet "src/$REPO"\n'
    f"if printf '%s\\n' \"$REF\" | grep -Eq '{SHA_PATTERN}'; then\n"
    f'  git -C "src/$REPO" fetch --quiet --depth={FULL_DEPTH} "$URL" '
    "'+refs/heads/*:refs/remotes/origin/*' '+refs/tags/*:refs/tags/*'\n"
    '  git -C "src/$REPO" checkout --quiet --force --detach "$REF"\n'
    "else\n"
    '  git -C "src/$REPO" fetch --quiet --depth 1 "$URL" "$REF"\n'
    '  git -C "src/$REPO" checkout --quiet --force --detach FETCH_HEAD\n'
    "fi\n"
    'echo "sha=$(git -C "src/$REPO" rev-parse HEAD)" >> "$GITHUB_OUTPUT"'
)

# Repos without build steps only (the `if` of its step); $PROJECT is the repo's
# working_directory, where dagfleet looks for uv.lock.
DBT_PARSE = (
    "find \"src/$REPO\" -name dbt_project.yml -not -path '*/.venv/*' -print0 |\n"
    "  while IFS= read -r -d '' project; do\n"
    '    if [ -f "src/$REPO/$PROJECT/uv.lock" ]; then\n'
    '      (cd "$(dirname "$project")" && uv run --locked dbt parse --profiles-dir .)\n'
    "    else\n"
    '      echo "::notice::$project: no uv.lock, dbt parse skipped (declare it as a build step)"\n'
    "    fi\n"
    "  done"
)


def install_command(opts: CiOptions, dagfleet_version: str) -> str:
    """The `uv tool install` of dagfleet every job runs.

    With `dagfleet_wheels`, uv looks there first (`--find-links`; a wheel found there
    wins over the index at the same version) for both dagfleet and the
    dagfleet-runtime it pins, and the other dependencies come from the index. The
    default source is then pinned to `dagfleet_version`, the renderer's own: CI
    runs the dagfleet that rendered the workflow, not a newer release.
    """
    source = opts.dagfleet_source
    if opts.dagfleet_wheels is None:
        return f"uv tool install {shlex.quote(source)}"
    if source == CiOptions.dagfleet_source:
        source = f"dagfleet=={dagfleet_version}"
    links = shlex.quote(opts.dagfleet_wheels)
    return f"uv tool install --find-links {links} {shlex.quote(source)}"


def wheels_problem(fleet_root: Path, opts: CiOptions, dagfleet_version: str) -> str | None:
    """Why `dagfleet_wheels` cannot serve CI's install, or None (a URL is not checked).

    CI checks the fleet repository out and runs from its root, so a directory is
    relative to it and, for the pinned default, holds this version's two wheels.
    """
    wheels = opts.dagfleet_wheels
    if wheels is None or re.match(r"^[a-z][a-z0-9+.-]*://", wheels):
        return None
    if Path(wheels).is_absolute():
        return (
            f"{wheels} is absolute; CI has only the fleet repository: give a directory "
            "relative to it (e.g. wheels) or an https:// find-links URL"
        )
    where = fleet_root / wheels
    found = [p.name for p in where.glob("*.whl")] if where.is_dir() else []
    names = ["dagfleet-", "dagfleet_runtime-"]
    if opts.dagfleet_source == CiOptions.dagfleet_source:
        names = [f"{n}{dagfleet_version}-" for n in names]
    missing = [n for n in names if not any(f.startswith(n) for f in found)]
    if not missing:
        return None
    wanted = " and ".join(f"{n}*.whl" for n in missing)
    return (
        f"{where} has no {wanted}; build them with `make dist` in the dagfleet "
        f"checkout, copy dist/*.whl to {where} and commit them"
    )


def _env(**values: str) -> dict[str, str]:
    return {k.upper(): "${{ matrix." + v + " }}" for k, v in values.items()}


def render_ci(fleet: Fleet, opts: CiOptions | None = None) -> c.Rendered:
    opts = opts or CiOptions()
    install = {"name": "Install dagfleet", "run": install_command(opts, version("dagfleet"))}
    checkout_code = {
        "name": "Check out ${{ matrix.repo }} at ${{ matrix.ref }}",
        "id": "code",
        "run": CHECKOUT_SCRIPT,
    }
    registry = opts.registry.rstrip("/")
    state: dict[str, Any] = {
        "runs-on": "ubuntu-latest",
        "steps": [
            {"uses": CHECKOUT},
            {
                "name": "No Terraform state committed",
                "run": (
                    "found=$(find . -name '*.tfstate*' -not -path './.git/*')\n"
                    'if [ -n "$found" ]; then echo "state files committed:"; '
                    'echo "$found"; exit 1; fi'
                ),
            },
        ],
    }
    locations = [
        {
            "location": loc.name,
            "repo": loc.repo,
            "env": loc.env,
            "ref": loc.pin or loc.ref,
            "url": fleet.repos[loc.repo].git_url,
            "project": fleet.repos[loc.repo].target_for(loc.entry)[1],
            "dbt_parse": not fleet.repos[loc.repo].build_for(loc.entry),
        }
        for loc in fleet.locations()
        if not loc.playground
    ]
    validate: dict[str, Any] = {
        "name": "validate ${{ matrix.location }}",
        "runs-on": "ubuntu-latest",
        "strategy": {"fail-fast": False, "matrix": {"include": locations}},
        "env": _env(repo="repo", env="env", ref="ref", url="url", project="project"),
        "steps": [
            {"uses": CHECKOUT},
            {"uses": SETUP_UV},
            install,
            {
                "name": "Validate ${{ matrix.location }}",
                "run": 'dagfleet validate "$REPO" --env "$ENV" --fleet .',
            },
            checkout_code,
            {"name": "dbt parse", "if": "matrix.dbt_parse", "run": DBT_PARSE},
        ],
    }
    builds = [
        {"repo": b.repo, "ref": b.ref, "url": b.git_url, "latest": b.latest}
        for b in image_builds(fleet)
    ]
    build: dict[str, Any] = {
        "name": "build ${{ matrix.repo }} at ${{ matrix.ref }}",
        "needs": ["state-files", "validate"],
        "runs-on": "ubuntu-latest",
        "permissions": {"contents": "read", "packages": "write"},
        "strategy": {"fail-fast": False, "matrix": {"include": builds}},
        "env": {
            **_env(repo="repo", ref="ref", url="url", latest="latest"),
            "IMAGE": f"{registry}/${{{{ matrix.repo }}}}",
        },
        "steps": [
            {"uses": CHECKOUT},
            {"uses": SETUP_UV},
            install,
            checkout_code,
            {
                "name": "Image tags",
                "id": "tags",
                "env": {"SHA": "${{ steps.code.outputs.sha }}"},
                "run": (
                    'tags="$IMAGE:$SHA"\n'
                    'if [ "$LATEST" = true ]; then tags="$tags,$IMAGE:latest"; fi\n'
                    'echo "tags=$tags" >> "$GITHUB_OUTPUT"'
                ),
            },
            {
                "name": "Render the Dockerfile",
                "run": 'dagfleet render dockerfile "$REPO" --fleet . --out "build/$REPO"',
            },
            {"uses": "docker/setup-buildx-action@v4"},
            {
                "if": ON_MAIN,
                "uses": "docker/login-action@v4",
                "with": {
                    "registry": registry.split("/")[0],
                    "username": "${{ github.actor }}",
                    "password": "${{ secrets.GITHUB_TOKEN }}",
                },
            },
            {
                "uses": "docker/build-push-action@v7",
                "with": {
                    "context": "src/${{ matrix.repo }}",
                    "file": "build/${{ matrix.repo }}/Dockerfile",
                    "push": "${{ " + ON_MAIN + " }}",
                    "tags": "${{ steps.tags.outputs.tags }}",
                },
            },
        ],
    }
    jobs: dict[str, Any] = {"state-files": state}
    if locations:
        jobs |= {"validate": validate, "build": build}
    workflow = {
        "name": f"dagfleet {fleet.name}",
        "on": {"push": {"branches": ["main"]}, "pull_request": {"branches": ["main"]}},
        "jobs": jobs,
    }
    return {".github/workflows/dagfleet.yaml": workflow}
