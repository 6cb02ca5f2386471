"""What every renderer shares: names, labels, paths, storage variables and secret mapping.

Names: environments keep their case in the fleet (A, B) but Kubernetes names are
DNS-1123 labels, so everything rendered is lower-cased and kept within 63
characters (a stable hash suffix replaces the overflow, which the spec limits
rule out: fleet and repo names of 40, environments of 12 characters). An
environment may start with a digit; every name built from one starts with the
fleet or repo name (or `playground`), which start with a letter, so Services
(RFC 1035 labels) stay valid. Secrets: an `EnvVar` with `from_env`/`from_file` never has its value
rendered; it becomes a reference (`secret_key`) into one Secret per repo and
environment, `dagfleet-<repo>` in the environment's namespace (Kubernetes), or
`<fleet>/<env>/<repo>/<key>` in Secrets Manager (ECS).
References: a repo's `value`s may name `${DAGFLEET_CHECKOUT}` and friends
(dagfleet.spec.references); each target expands them with its own values
(`literal_env`): the checkout is where that target's container sees the code
(the git-sync link on Kubernetes, the image's APP_DIR on ECS, compose and in
the Dockerfile), the storage names are that target's storage variables.
Git URLs: a cluster (or ECS, or a compose host building images) cannot reach a
path on the machine that rendered it; `require_remote_git_urls` refuses a
`file://` URL or a local path, naming the repo file and the fix.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

from dagfleet.spec.models import EnvVar, Fleet, LocationSpec, RepoSpec
from dagfleet.spec.references import expand, target_values
from dagfleet.storage.environ import location_env

# A render result: relative path -> a YAML document (dict), several (list of
# dicts, written as a multi-document stream) or text (str).
Rendered = dict[str, Any]

MAX_NAME = 63
CODE_PORT = 4000
DEBUG_PORT = 5678
RELOAD_PORT = 8085
WEBSERVER_PORT = 3001
APP_DIR = "/opt/dagster/app"
CHECKOUT_DIR = "/opt/dagster/git"
CHECKOUT_LINK = "current"
# Kubernetes: the code as its containers see it, the git-sync link (never a resolved path).
K8S_CODE_DIR = f"{CHECKOUT_DIR}/{CHECKOUT_LINK}"
PLAYGROUND_DIR = "/opt/dagster/app/playground"
LAUNCHER_DIR = "/opt/dagfleet"
LAUNCHER_PATH = f"{LAUNCHER_DIR}/launch.py"
DAGSTER_HOME = "/opt/dagster/dagster_home"
LAYERS = ("bronze", "silver", "gold")
# Where a local (PVC) storage root is mounted in every container (seed 001's /data).
DATA_ROOT = "/data"
# Kubernetes: the environment's claim holding `repos/<repo>/...` and `shared/`.
DATA_CLAIM = "data"
# Kubernetes: the environment's claim holding its playground files (PLAYGROUND_DIR),
# mounted by the playground's code server and by its run pods.
PLAYGROUND_CLAIM = "playground"
PLAYGROUND_CLAIM_SIZE = "1Gi"
# The playground loader next to the launcher (ConfigMap `dagfleet-launcher`); the
# launcher installs it as PLAYGROUND_DIR/__init__.py.
PLAYGROUND_INIT = "playground_init.py"
# Kubernetes: DAGFLEET_TEMP, an emptyDir (one pod's scratch space).
TEMP_DIR = "/tmp/dagfleet"
_INVALID = re.compile(r"[^a-z0-9-]+")
# `host:path` (scp-like) or `scheme://...`: a git server; anything else is a local path.
_SCP_LIKE = re.compile(r"^[^/:]{2,}:")
_COMMIT = re.compile(r"^[0-9a-f]{40}$")


class RenderError(ValueError):
    """A fleet that cannot be rendered for a target; the message names the file, field and fix."""


def is_local_git_url(url: str) -> bool:
    """A `file://` URL or a path on this machine (absolute, relative or `~`)."""
    if url.startswith("file:"):
        return True
    if "://" in url:
        return False
    return not _SCP_LIKE.match(url)


def git_url_problems(fleet: Fleet, target: str) -> list[str]:
    """One message per repo whose git_url only exists on this machine."""
    out = []
    for name in sorted(fleet.repos):
        url = fleet.repos[name].git_url
        if not is_local_git_url(url):
            continue
        path = url.removeprefix("file://")
        out.append(
            f"repos/{name}.yaml: git_url: {url} is a path on this machine, which a {target} "
            f"deployment cannot reach. Push the repo to a git server the {target} deployment "
            f"can reach (e.g. `git -C {path} push --all "
            f"https://git.example.com/<team>/{name}.git` and `git -C {path} push --tags` to "
            "the same URL) and set git_url in the repo file to that URL (give the server's "
            "credentials with `credentials:`; see docs/deploy.md)."
        )
    return out


def require_remote_git_urls(fleet: Fleet, target: str) -> None:
    """Raise RenderError listing every repo whose git_url is local (git_url_problems)."""
    problems = git_url_problems(fleet, target)
    if problems:
        raise RenderError("\n".join(problems))


def check_commit(location: str, commit: str) -> str:
    """A pinned commit must be a full 40-hex SHA (a ref or a short SHA is not exact)."""
    if not _COMMIT.match(commit):
        raise RenderError(
            f"commits: {location}: {commit!r} is not a full 40-hex commit; pass the "
            f"commit's full SHA (`git rev-parse <ref>`)"
        )
    return commit


def k8s_name(*parts: str, limit: int = MAX_NAME) -> str:
    """A DNS-1123 label from `parts`: lower-cased, '-'-joined, at most `limit` characters."""
    raw = "-".join(p for p in parts if p)
    name = _INVALID.sub("-", raw.lower()).strip("-") or "x"
    if len(name) <= limit:
        return name
    digest = hashlib.sha256(raw.encode()).hexdigest()[:8]
    return f"{name[: limit - 9].rstrip('-')}-{digest}"


def namespace(fleet: Fleet, env: str) -> str:
    """Seed 000's `datpipe-A`, lower-cased: `<fleet>-<env>`."""
    return k8s_name(fleet.name, env)


def instance_namespace(fleet: Fleet) -> str:
    """Where the central webserver and daemon run (the Helm release namespace)."""
    return k8s_name(fleet.name)


def location_k8s_name(loc: LocationSpec) -> str:
    return k8s_name(loc.name)


def secret_name(repo: str) -> str:
    """The Secret (in each environment's namespace) holding a repo's referenced values."""
    return k8s_name("dagfleet", repo)


def secret_key(var: EnvVar) -> str:
    """The key a secret reference is stored under: the source variable or file's base name."""
    source = var.from_env or (var.from_file or "").rstrip("/").rsplit("/", 1)[-1] or var.name
    return re.sub(r"[^-._a-zA-Z0-9]", "_", source)


def labels(fleet: Fleet, component: str, **extra: str) -> dict[str, str]:
    out = {
        "app.kubernetes.io/part-of": "dagfleet",
        "app.kubernetes.io/managed-by": "dagfleet",
        "app.kubernetes.io/component": component,
        "dagfleet.dev/fleet": fleet.name,
    }
    out.update({f"dagfleet.dev/{k}": k8s_name(v) for k, v in extra.items()})
    return out


def repo_of(fleet: Fleet, loc: LocationSpec) -> RepoSpec | None:
    return None if loc.playground else fleet.repos[loc.repo]


def own_env(fleet: Fleet, loc: LocationSpec) -> dict[str, str]:
    """dagfleet's names for a location, as `dagfleet up` sets them."""
    return {
        "DAGFLEET_FLEET": fleet.name,
        "DAGFLEET_ENV": loc.env,
        "DAGFLEET_REPO": loc.repo,
        "DAGFLEET_LOCATION": loc.name,
    }


def reference_values(
    fleet: Fleet, loc: LocationSpec, checkout: str, storage: Mapping[str, str]
) -> dict[str, str]:
    """What `${...}` references in a location's values expand to on one target:
    `checkout` is the code dir as that target's container sees it, `storage` that
    target's storage variables (dagfleet.spec.references.NAMES)."""
    project_dir = working_dir(fleet, loc, checkout)
    return {**own_env(fleet, loc), **target_values(checkout, project_dir, storage)}


def literal_env(
    fleet: Fleet, loc: LocationSpec, *, checkout: str, storage: Mapping[str, str]
) -> dict[str, str]:
    """Plain (non-secret) variables of a location: environment vars, then the repo's
    values with their `${...}` references expanded for the target (`reference_values`)."""
    out = dict(fleet.environment(loc.env).env)
    repo = repo_of(fleet, loc)
    values = reference_values(fleet, loc, checkout, storage)
    for var in repo.environment_for(loc.entry) if repo else []:
        if var.value is not None:
            out[var.name] = expand(var.value, values)
    out.update({**own_env(fleet, loc), "PYTHONUNBUFFERED": "1"})
    return out


def secret_vars(fleet: Fleet, loc: LocationSpec) -> list[EnvVar]:
    repo = repo_of(fleet, loc)
    return [v for v in (repo.environment_for(loc.entry) if repo else []) if v.is_secret]


def s3_root(fleet: Fleet, bucket: str) -> str:
    """The fleet's s3:// storage root, or `s3://<bucket>` when storage is local."""
    root = fleet.spec.storage.root
    return root.rstrip("/") if fleet.spec.storage.is_s3 else f"s3://{bucket}"


def s3_env(fleet: Fleet, env: str, repo: str, bucket: str) -> dict[str, str]:
    """Seed 004's layout: `<root>/<env>/<repo prefix>/{assets,runs,logs}` and `<env>/shared`.

    The variables `dagfleet up` gives a location (dagfleet.storage.location_env), minus
    DAGFLEET_TEMP: `<env>/temp` is shared by the environment's repos, which the task
    roles (ECS) do not grant; renderers that need a scratch directory add a local one.
    """
    out = location_env(fleet, repo, env, root=s3_root(fleet, bucket))
    del out["DAGFLEET_TEMP"]
    return out


def container_storage_env(fleet: Fleet, env: str, repo: str) -> dict[str, str]:
    """The variables `dagfleet up` gives a location (dagfleet.storage.location_env), as a
    code server's container sees them: with an s3:// root the same URLs minus
    DAGFLEET_TEMP (s3_env); with a local root, paths under the volume at DATA_ROOT:
    `/data/<env>/<prefix>/{assets,runs,logs}`, shared and temp.

    Seed 001's layers live under the location's root (`/data/<env>/<prefix>/bronze`...),
    where the medallion's IO manager writes them (DAGFLEET_STORAGE_ROOT/<layer>).
    """
    if fleet.spec.storage.is_s3:
        return s3_env(fleet, env, repo, "")
    return location_env(fleet, repo, env, root=DATA_ROOT)


def bucket_and_prefix(s3_url: str) -> tuple[str, str]:
    """`s3://bucket/a/b` -> (`bucket`, `a/b`)."""
    rest = s3_url.removeprefix("s3://")
    bucket, _, prefix = rest.partition("/")
    return bucket, prefix.strip("/")


def target_args(fleet: Fleet, loc: LocationSpec, code_dir: str) -> list[str] | None:
    """`dagster code-server start` target flags, or None when the launcher must discover them.

    The working directory is the checkout *link* path, never a resolved one, so a
    reload after git-sync flips the link loads the new commit.
    """
    repo = repo_of(fleet, loc)
    if repo is None:
        # Seed 000's `python_package: playground`: every *.py file copied in loads.
        return ["--package-name", "playground", "--working-directory", APP_DIR]
    target, directory = repo.target_for(loc.entry)
    wd = code_dir if directory == "." else f"{code_dir}/{directory}"
    if target is None:
        return None
    args = target.dagster_args()
    args[args.index("--working-directory") + 1] = wd
    return args


def working_dir(fleet: Fleet, loc: LocationSpec, code_dir: str) -> str:
    repo = repo_of(fleet, loc)
    if repo is None:
        return PLAYGROUND_DIR
    directory = repo.target_for(loc.entry)[1]
    return code_dir if directory == "." else f"{code_dir}/{directory}"


def cpu_quantity(cpu_units: int) -> str:
    """ECS cpu units (1024 = 1 vCPU, seed 004) as a Kubernetes quantity in millicores."""
    return f"{max(1, round(cpu_units * 1000 / 1024))}m"


def memory_quantity(mib: int) -> str:
    return f"{mib}Mi"
