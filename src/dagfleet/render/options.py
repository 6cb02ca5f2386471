"""Render options the fleet files do not carry, with the defaults dagfleet chose.

Defaults and why:
- `kubernetes_version` "1.30": the oldest Kubernetes still in upstream support
  when this was written; every object uses only GA APIs of that version, and the
  integration tests validate against it.
- `registry` "ghcr.io/dagfleet": images are `<registry>/<repo>:<tag>`, the
  seed-002 naming; CI pushes the same names.
- `image_tag` "latest" here only so library callers and tests can omit it: the
  CLI has no default and requires `--tag` (images by explicit version, e.g. the
  code commit SHA `render ci` tags each image with); `latest` is whatever was
  pushed last and cannot be rolled back to.
- `cnpg` True: seed 002 runs Postgres with CloudNativePG; off renders a plain
  StatefulSet with the same Service name, so nothing else changes.
- `node_port` None: the front door's Service stays ClusterIP; seed 001 used 30000
  (`localhost:30000`), which now reaches the front door, never the webserver.
- `frontdoor_image` None: `<registry>/dagfleet:<tag>`, an image with the dagfleet
  package (its `dagfleet` console script) installed; nothing else runs dagfleet
  in a cluster, so the repo images do not carry it (docs/deploy.md, "Front door").
- `frontdoor_replicas` 1: every replica reads the same session key Secret, so
  more are safe; one is enough for a UI.
- `public_url` None: how users reach the front door (https://dagster.example.com);
  given, it becomes `--public-url` (Secure cookies, the single sign-on redirect
  URL). ECS takes it as the template parameter `FrontDoorPublicUrl` instead.
- `commits` {}: location name -> full commit; a listed location is rendered
  pinned to exactly that commit (k8s_location), the others follow their ref.
- `chart_version` None: the dagster Helm chart whose version is
  `dagster_version` (the chart's image tags default to its own version, so the
  chart 1.13.0 runs the dagster 1.13.0 the images pin); never "whatever is newest".
- `dagfleet_api` True: dagfleet's API, webhook route and metrics run in the
  cluster (k8s_dagfleet.py), read-only over the fleet files; off renders none.
- `deploy_repo` None: the in-cluster dagfleet releases nothing itself (its push
  webhook answers 503 naming this setting); a git URL the cluster can reach (with
  `deploy_branch` "main" and `deploy_path` "", the repository root) makes it judge
  each pushed commit as `dagfleet release run` does and write accepted ones there
  (k8s_dagfleet.py; credentials from the Secret `dagfleet-deploy-repo`).
- `service_monitor` False: a ServiceMonitor needs the Prometheus Operator's CRD,
  which not every cluster has; on renders one for dagfleet's /metrics.
- ECS `commits` {}: as `commits` on Kubernetes; a listed location runs
  `<registry>/<repo>:<commit>` with DAGFLEET_COMMIT (ecs.py).
- `git_sync_image` v4.4.0 of the official image, `period` from the repo poll
  interval (fleet default 10s).
- `pvc_access_mode` "ReadWriteMany" for the data PVCs of a local storage root:
  a location's code server and the run pods the K8sRunLauncher starts for it
  mount the same claims, and run pods land on any node. ReadWriteOnce only
  works while every one of those pods is on one node (a one-node cluster, as
  seed 001 ran); choose it where the storage class has no RWX (local-path,
  kind, most block storage) and the cluster has a single node.
- `s3_bucket` "dagster-storage" (seed 004's bucket) when the fleet storage root
  is not already an s3:// URL.
- `dagfleet_source` "dagfleet": what the rendered CI installs with `uv tool
  install`; any requirement uv accepts, e.g. `dagfleet==0.1.0`, a wheel URL or
  `git+https://git.example.com/platform/dagfleet@v0.1.0` for a private copy.
- `dagfleet_wheels` None: CI installs from the package index; a directory of the
  fleet repository (or a find-links URL) with the wheels `make dist` builds makes
  it install those instead, dagfleet pinned to the rendering dagfleet's version.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

DEFAULT_KUBERNETES_VERSION = "1.30"
DEFAULT_REGISTRY = "ghcr.io/dagfleet"
DEFAULT_GIT_SYNC_IMAGE = "registry.k8s.io/git-sync/git-sync:v4.4.0"
DEFAULT_POSTGRES_IMAGE = "postgres:16"
DEFAULT_DAGSTER_VERSION = "1.13.0"
DEFAULT_S3_BUCKET = "dagster-storage"
# ReadWriteOncePod cannot work: the code server and its run pods share the claims.
PvcAccessMode = Literal["ReadWriteMany", "ReadWriteOnce"]
DEFAULT_PVC_ACCESS_MODE: PvcAccessMode = "ReadWriteMany"
# The front door's image name under the registry (`<registry>/dagfleet:<tag>`).
DAGFLEET_IMAGE = "dagfleet"


@dataclass(frozen=True)
class ImageOptions:
    registry: str = DEFAULT_REGISTRY
    image_tag: str = "latest"

    def repo_image(self, repo: str) -> str:
        return f"{self.registry.rstrip('/')}/{repo}:{self.image_tag}"


@dataclass(frozen=True)
class FrontDoorImageOptions(ImageOptions):
    """Where the front door's image comes from (the targets that run one)."""

    frontdoor_image: str | None = None

    def frontdoor(self) -> str:
        """The image carrying dagfleet: `frontdoor_image`, else `<registry>/dagfleet:<tag>`."""
        return self.frontdoor_image or self.repo_image(DAGFLEET_IMAGE)


@dataclass(frozen=True)
class CiOptions(ImageOptions):
    dagfleet_source: str = "dagfleet"
    dagfleet_wheels: str | None = None


@dataclass(frozen=True)
class K8sOptions(FrontDoorImageOptions):
    kubernetes_version: str = DEFAULT_KUBERNETES_VERSION
    cnpg: bool = True
    node_port: int | None = None
    frontdoor_replicas: int = 1
    public_url: str | None = None
    git_sync_image: str = DEFAULT_GIT_SYNC_IMAGE
    postgres_image: str = DEFAULT_POSTGRES_IMAGE
    dagster_version: str = DEFAULT_DAGSTER_VERSION
    pvc_size: str = "10Gi"
    storage_class: str | None = None
    pvc_access_mode: PvcAccessMode = DEFAULT_PVC_ACCESS_MODE
    release_name: str = "dagster"
    # dagfleet itself in the instance namespace (k8s_dagfleet.py): API, webhooks, metrics.
    dagfleet_api: bool = True
    # The deploy repository the in-cluster dagfleet releases into on push webhooks
    # (k8s_dagfleet.py): a git URL, its branch and the directory under it; None: it does not.
    deploy_repo: str | None = None
    deploy_branch: str = "main"
    deploy_path: str = ""
    # A Prometheus Operator ServiceMonitor for dagfleet's /metrics (needs its CRD installed).
    service_monitor: bool = False
    # location name -> the full 40-hex commit it is pinned to (k8s_location: exact checkout,
    # loaded-definitions readiness, rolling update); a location not listed follows its ref.
    commits: Mapping[str, str] = field(default_factory=dict)
    # The dagster Helm chart's version (HelmRelease, `helm upgrade --version`); None: the
    # chart released with `dagster_version` (the chart and dagster share version numbers).
    chart_version: str | None = None

    def helm_chart_version(self) -> str:
        return self.chart_version or self.dagster_version


@dataclass(frozen=True)
class EcsOptions(FrontDoorImageOptions):
    s3_bucket: str = DEFAULT_S3_BUCKET
    dagster_image: str = "dagster/dagster-celery-k8s:latest"
    # location name -> full 40-hex commit: its task definition carries the commit and its
    # image is tagged with it (`<registry>/<repo>:<commit>`); unlisted locations keep image_tag.
    commits: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ComposeOptions(FrontDoorImageOptions):
    postgres_image: str = DEFAULT_POSTGRES_IMAGE
    public_url: str | None = None
