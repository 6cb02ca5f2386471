"""`render ci`: a GitHub Actions workflow for the fleet repository, shaped like seed 002.

Triggers: push to main and pull requests to main. Jobs:
- validate: fails when a `*.tfstate*` file is committed, runs `dagfleet
  validate` (every repo's definitions load in their environments), and runs
  `dbt parse` in every dbt project found in each repo's checkout;
- build (matrix over repos): renders the repo's Dockerfile with dagfleet,
  builds it tagged with the commit SHA and `latest`, and pushes only on a push
  to main (pull requests build without pushing).
The registry is the `registry` render option (default ghcr.io/dagfleet) and
dagfleet is installed from `dagfleet_source`; credentials come from the
workflow's GITHUB_TOKEN, never from the render.
"""

from __future__ import annotations

import shlex
from typing import Any

from dagfleet.render import common as c
from dagfleet.render.options import CiOptions
from dagfleet.spec.models import Fleet

CHECKOUT = "actions/checkout@v5"
SETUP_UV = "astral-sh/setup-uv@v5"
ON_MAIN = "github.event_name == 'push' && github.ref == 'refs/heads/main'"


def _clone_steps(fleet: Fleet) -> str:
    lines = []
    for repo in sorted(fleet.repos.values(), key=lambda r: r.name):
        env = fleet.spec.environments[0]
        lines.append(
            f'git clone --depth 1 --branch "{repo.ref_for(env)}" "{repo.git_url}" "src/{repo.name}"'
        )
    return "\n".join(lines) or "true"


def render_ci(fleet: Fleet, opts: CiOptions | None = None) -> c.Rendered:
    opts = opts or CiOptions()
    install = {
        "name": "Install dagfleet",
        "run": f"uv tool install {shlex.quote(opts.dagfleet_source)}",
    }
    repos = sorted(fleet.repos)
    registry = opts.registry.rstrip("/")
    validate: dict[str, Any] = {
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
            {"uses": SETUP_UV},
            install,
            {"name": "Validate every location", "run": "dagfleet validate --fleet ."},
            {"name": "Check out the repos", "run": _clone_steps(fleet)},
            {
                "name": "dbt parse",
                "run": (
                    "for project in $(find src -name dbt_project.yml -not -path '*/.venv/*'); do\n"
                    '  dir=$(dirname "$project")\n'
                    '  (cd "$dir" && uv run --locked dbt parse --profiles-dir .)\n'
                    "done"
                ),
            },
        ],
    }
    build: dict[str, Any] = {
        "needs": "validate",
        "runs-on": "ubuntu-latest",
        "permissions": {"contents": "read", "packages": "write"},
        "strategy": {"fail-fast": False, "matrix": {"repo": repos}},
        "steps": [
            {"uses": CHECKOUT},
            {"uses": SETUP_UV},
            install,
            {"name": "Check out the repos", "run": _clone_steps(fleet)},
            {
                "name": "Render the Dockerfile",
                "run": 'dagfleet render dockerfile "${{ matrix.repo }}" --fleet . '
                '--out "build/${{ matrix.repo }}"',
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
                    "tags": (
                        f"{registry}/${{{{ matrix.repo }}}}:${{{{ github.sha }}}}\n"
                        f"{registry}/${{{{ matrix.repo }}}}:latest"
                    ),
                },
            },
        ],
    }
    workflow = {
        "name": f"dagfleet {fleet.name}",
        "on": {"push": {"branches": ["main"]}, "pull_request": {"branches": ["main"]}},
        "jobs": {"validate": validate, "build": build} if repos else {"validate": validate},
    }
    return {".github/workflows/dagfleet.yaml": workflow}
