"""A run pod checks out the commit its code server loaded, not the tip of the branch.

The Kubernetes render is made for a location pinned to commit C1 (`K8sOptions.commits`);
then the branch moves to C2, as a push after the run was launched does. The run pod's
checkout step (the one-time git-sync in the code server's container context, turned into
the equivalent git commands by `git_sync_equivalent`) runs here against a real git
server (`git daemon` on a loopback port: the render refuses file:// URLs) and must hold
C1. The same step rendered without a pin follows the branch to C2, which is the bug the
pin fixes.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dagfleet.render import K8sOptions, render_k8s
from dagfleet.render import common as c
from dagfleet.render.k8s_location import git_sync_equivalent
from dagfleet.render.write import texts
from dagfleet.spec.models import Fleet, FleetSpec, RepoSpec
from tests.support.gitdaemon import git_daemon
from tests.support.gitrepo import CodeRepo
from tests.unit.render.test_properties import manifest_docs

pytestmark = pytest.mark.integration


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[CodeRepo, str]]:
    """A CodeRepo whose bare remote `git daemon` serves at git://127.0.0.1:<port>/demo.git."""
    repo = CodeRepo(tmp_path / "remotes", name="demo", branches=("A", "B"))
    with git_daemon(tmp_path / "remotes", "demo.git") as base:
        yield repo, f"{base}/demo.git"


def fleet_for(url: str) -> Fleet:
    spec = FleetSpec.model_validate(
        {"name": "shop", "environments": [{"name": "A", "branch": "A"}]}
    )
    repo = RepoSpec.model_validate(
        {"name": "demo", "git_url": url, "module_name": "demo.definitions"}
    )
    return Fleet(root="/fleet", spec=spec, repos={"demo": repo})


def rendered_deployment(fleet: Fleet, opts: K8sOptions) -> dict[str, Any]:
    docs = manifest_docs(texts(render_k8s(fleet, opts)))
    (deployment,) = [
        d
        for d in docs
        if d["kind"] == "Deployment"
        and d["metadata"]["labels"].get("app.kubernetes.io/component") == "code-server"
    ]
    return deployment


def run_pod_checkout_args(deployment: dict[str, Any]) -> list[str]:
    """The run pod's init container args, read from the code server's container context."""
    (server,) = deployment["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in server["env"]}
    context = json.loads(env["DAGSTER_CONTAINER_CONTEXT"])
    (sync,) = context["k8s"]["run_k8s_config"]["pod_spec_config"]["init_containers"]
    args: list[str] = sync["args"]
    return args


def run_checkout(args: list[str], pod_root: Path) -> str:
    """Run the run pod's checkout step with its root under `pod_root`; the checked-out HEAD."""
    local = [a.replace(f"--root={c.CHECKOUT_DIR}", f"--root={pod_root}") for a in args]
    subprocess.run(["sh", "-c", git_sync_equivalent(local)], check=True, capture_output=True)
    link = pod_root / c.CHECKOUT_LINK
    head = subprocess.run(
        ["git", "-C", str(link), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    )
    return head.stdout.strip()


def test_run_pod_checks_out_the_launch_commit_after_the_branch_moved(
    served: tuple[CodeRepo, str], tmp_path: Path
) -> None:
    repo, url = served
    launch = repo.tip("A")
    fleet = fleet_for(url)
    pinned = rendered_deployment(fleet, K8sOptions(image_tag="v1", commits={"demo-A": launch}))
    following = rendered_deployment(fleet, K8sOptions(image_tag="v1"))

    # The code server's own checkout is the same commit: one exact commit per pod.
    (server_sync,) = pinned["spec"]["template"]["spec"]["initContainers"]
    assert f"--ref={launch}" in server_sync["args"]
    assert pinned["spec"]["template"]["metadata"]["labels"]["dagfleet.dev/commit"] == launch

    # A push after the run was launched moves the branch.
    moved = repo.commit({"demo/extra.py": "X = 2\n"}, "after launch", branch="A")
    repo.push("A")
    assert moved != launch

    assert run_checkout(run_pod_checkout_args(pinned), tmp_path / "pinned") == launch
    assert not (tmp_path / "pinned" / c.CHECKOUT_LINK / "demo" / "extra.py").exists()
    # Without the pin the same step follows the branch: the run would execute newer code.
    assert run_checkout(run_pod_checkout_args(following), tmp_path / "following") == moved


def test_a_commit_behind_the_tip_is_fetched_by_hash(
    served: tuple[CodeRepo, str], tmp_path: Path
) -> None:
    """The pinned commit is no branch tip at all any more (two pushes later): still fetched."""
    repo, url = served
    launch = repo.tip("A")
    for n in range(2):
        repo.commit({f"demo/later{n}.py": "Y = 1\n"}, f"later {n}", branch="A")
    repo.push("A")
    pinned = rendered_deployment(
        fleet_for(url), K8sOptions(image_tag="v1", commits={"demo-A": launch})
    )
    assert run_checkout(run_pod_checkout_args(pinned), tmp_path / "pod") == launch
