"""What `dagfleet release` keeps in the deploy repository, as pure functions.

Under the deploy path (the repository root or `--path`):
- `commits.yaml`: which commit each location serves, sorted by location, one
  readable block per location (repo, environment, full commit). Only
  `dagfleet release` writes it; the rendered manifests are pinned to it.
- `status/<location>.json`: the last judgement of the location in dagfleet's
  status format (`LocationStatus`): `commit` and `last_good_commit` are the
  released commit, the `Synced` condition says whether the newest judged commit
  was accepted and, if not, why.
- `render.yaml` (written by people, `image_tag` required): `K8sOptions` fields for
  the render (registry, image_tag, ...) and `flux_repo_url`/`flux_interval` (how Flux reads
  this repository), so every release renders the same way.
- `manifests/` and `flux/sync.yaml`: `render_flux` output (the Kubernetes render
  with the chart as a HelmRelease); `flux/sync.yaml`, applied once, has Flux
  watch this branch and apply `<path>/manifests`.

Every function here is deterministic: writing the same decision twice gives the
same bytes, so releasing a commit again changes nothing and makes no git commit.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from dagfleet.release.deployrepo import DeployRepo
from dagfleet.render.options import K8sOptions
from dagfleet.status import LocationStatus, Reason
from dagfleet.status.conditions import ConditionType

COMMITS_FILE = "commits.yaml"
RENDER_FILE = "render.yaml"
STATUS_DIR = "status"
_HEADER = (
    "# Which commit each location serves, written by `dagfleet release` (do not edit by hand:\n"
    "# release or promote instead). The manifests under manifests/ are pinned to these.\n"
)
# Fields of K8sOptions that render.yaml may not set: release owns them (the in-cluster
# dagfleet releases into the branch and path this release writes, never elsewhere).
_RELEASE_OWNED = {"commits", "deploy_branch", "deploy_path"}


class RecordError(ValueError):
    """A file of the deploy repository that dagfleet cannot read; names the file and fix."""


@dataclass(frozen=True)
class Released:
    """One location's entry in commits.yaml."""

    location: str
    repo: str
    env: str
    commit: str


def parse_commits(text: str | None) -> dict[str, Released]:
    """commits.yaml -> location -> Released (an absent file is an empty record)."""
    if not text:
        return {}
    try:
        doc = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise RecordError(f"{COMMITS_FILE}: not valid YAML ({exc}); restore it from git") from exc
    locations = doc.get("locations") if isinstance(doc, dict) else None
    if not isinstance(locations, dict):
        raise RecordError(f"{COMMITS_FILE}: needs a `locations:` mapping; restore it from git")
    out = {}
    for name, entry in locations.items():
        if not isinstance(entry, dict) or not all(
            isinstance(entry.get(k), str) for k in ("repo", "env", "commit")
        ):
            raise RecordError(
                f"{COMMITS_FILE}: locations.{name}: needs repo, env and commit strings; "
                "restore it from git"
            )
        out[str(name)] = Released(str(name), entry["repo"], entry["env"], entry["commit"])
    return out


def dump_commits(record: Mapping[str, Released]) -> str:
    doc = {
        "locations": {
            name: {"repo": r.repo, "env": r.env, "commit": r.commit}
            for name, r in sorted(record.items())
        }
    }
    return _HEADER + yaml.safe_dump(doc, sort_keys=False)


@dataclass(frozen=True)
class RenderSettings:
    """render.yaml: the Kubernetes options, and how Flux reads this deploy repository."""

    k8s: K8sOptions = field(default_factory=K8sOptions)
    flux_repo_url: str | None = None  # default: the URL dagfleet pushes to
    flux_interval: str = "5m"


def render_settings(text: str | None) -> RenderSettings:
    """render.yaml -> RenderSettings: `flux_repo_url`, `flux_interval` and K8sOptions fields.

    `image_tag` is required (as `render k8s --tag` is): a release never deploys `latest`."""
    try:
        doc = yaml.safe_load(text or "") or {}
    except yaml.YAMLError as exc:
        raise RecordError(f"{RENDER_FILE}: not valid YAML ({exc})") from exc
    if not isinstance(doc, dict):
        raise RecordError(f"{RENDER_FILE}: needs a mapping of render options, e.g. `image_tag: v1`")
    if not any(k in doc for k in ("image_tag", "image-tag")):
        raise RecordError(
            f"{RENDER_FILE}: image_tag: required: commit {RENDER_FILE} next to commits.yaml "
            "in the deploy repository with the tag CI pushes the images under (e.g. "
            "`image_tag: v1.4.2`); a release never deploys `latest`"
        )
    flux: dict[str, str] = {}
    for key in ("flux_repo_url", "flux_interval"):
        for spelling in (key, key.replace("_", "-")):
            if spelling in doc:
                value = doc.pop(spelling)
                if not isinstance(value, str) or not value:
                    raise RecordError(f"{RENDER_FILE}: {spelling}: expected a non-empty string")
                flux[key] = value
    return RenderSettings(render_options(yaml.safe_dump(doc) if doc else None), **flux)


def render_options(text: str | None) -> K8sOptions:
    """render.yaml's K8sOptions fields -> K8sOptions; absent means the defaults."""
    if not text:
        return K8sOptions()
    try:
        doc = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise RecordError(f"{RENDER_FILE}: not valid YAML ({exc})") from exc
    if not isinstance(doc, dict):
        raise RecordError(f"{RENDER_FILE}: needs a mapping of render options, e.g. `image_tag: v1`")
    fields = {f.name: f for f in dataclasses.fields(K8sOptions) if f.name not in _RELEASE_OWNED}
    values: dict[str, Any] = {}
    for key, value in doc.items():
        name = str(key).replace("-", "_")
        if name not in fields:
            names = ", ".join(sorted([*fields, "flux_interval", "flux_repo_url"]))
            raise RecordError(f"{RENDER_FILE}: {key}: not a render option; known options: {names}")
        default = fields[name].default
        typed = default is not None and default is not dataclasses.MISSING
        if typed and type(value) is not type(default):
            raise RecordError(
                f"{RENDER_FILE}: {key}: expected a {type(default).__name__}, got {value!r}"
            )
        values[name] = value
    return K8sOptions(**values)


def with_deploy(opts: K8sOptions, deploy: DeployRepo) -> K8sOptions:
    """With `deploy_repo` set in render.yaml, the in-cluster dagfleet releases on webhooks
    into this release's branch and path (k8s_dagfleet); without it, it releases nothing."""
    if not opts.deploy_repo:
        return opts
    return dataclasses.replace(opts, deploy_branch=deploy.branch, deploy_path=deploy.path)


def with_commits(opts: K8sOptions, record: Mapping[str, Released]) -> K8sOptions:
    return dataclasses.replace(opts, commits={n: r.commit for n, r in sorted(record.items())})


def accepted_status(
    old: LocationStatus | None, location: str, repo: str, env: str, ref: str, commit: str
) -> LocationStatus:
    """The status after `commit` was accepted and written into the manifests."""
    base = old or LocationStatus(location=location, repo=repo, env=env)
    status = base.model_copy(
        update={"repo": repo, "env": env, "ref": ref, "commit": commit, "last_good_commit": commit}
    )
    status = status.with_condition(
        ConditionType.SERVING, "True", Reason.PUBLISHED, f"{commit[:12]} is in the manifests"
    )
    return status.with_condition(
        ConditionType.SYNCED, "True", Reason.PUBLISHED, f"{commit[:12]} loaded and was released"
    )


def rejected_status(
    old: LocationStatus | None,
    location: str,
    repo: str,
    env: str,
    ref: str,
    commit: str | None,
    reason: str,
    message: str,
) -> LocationStatus:
    """The status after `commit` was rejected: the released commit (if any) stays, and
    `failures` counts one more rejection (as a local failed sync does; never reset), so
    the in-cluster API's `dagfleet_location_sync_failures` grows with each new one."""
    base = old or LocationStatus(location=location, repo=repo, env=env)
    status = base.model_copy(update={"repo": repo, "env": env, "ref": ref})
    prefix = f"{commit[:12]}: " if commit else ""
    text = message if not commit or message.startswith(commit[:12]) else prefix + message
    synced = status.condition(ConditionType.SYNCED)
    if (
        synced is not None
        and synced.status == "False"
        and synced.reason == reason
        and commit is not None
        and synced.message.startswith(commit[:12])
    ):
        return status  # the same commit rejected for the same reason: nothing new
    status = status.model_copy(update={"failures": status.failures + 1})
    return status.with_condition(ConditionType.SYNCED, "False", reason, text)


def status_text(status: LocationStatus) -> str:
    return status.model_dump_json(indent=2) + "\n"
