"""Render options the fleet files do not carry, with the defaults dagfleet chose.

Defaults and why:
- `kubernetes_version` "1.30": the oldest Kubernetes still in upstream support
  when this was written; every object uses only GA APIs of that version, and the
  integration tests validate against it.
- `registry` "ghcr.io/dagfleet": images are `<registry>/<repo>:<tag>`, the
  seed-002 naming; CI pushes the same names.
- `image_tag` "latest": seed 002 deploys `latest` with pullPolicy Always; pin a
  SHA tag for rollbacks.
- `cnpg` True: seed 002 runs Postgres with CloudNativePG; off renders a plain
  StatefulSet with the same Service name, so nothing else changes.
- `node_port` None: the webserver stays ClusterIP; seed 001 used 30000.
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

from dataclasses import dataclass
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


@dataclass(frozen=True)
class ImageOptions:
    registry: str = DEFAULT_REGISTRY
    image_tag: str = "latest"

    def repo_image(self, repo: str) -> str:
        return f"{self.registry.rstrip('/')}/{repo}:{self.image_tag}"


@dataclass(frozen=True)
class CiOptions(ImageOptions):
    dagfleet_source: str = "dagfleet"
    dagfleet_wheels: str | None = None


@dataclass(frozen=True)
class K8sOptions(ImageOptions):
    kubernetes_version: str = DEFAULT_KUBERNETES_VERSION
    cnpg: bool = True
    node_port: int | None = None
    git_sync_image: str = DEFAULT_GIT_SYNC_IMAGE
    postgres_image: str = DEFAULT_POSTGRES_IMAGE
    dagster_version: str = DEFAULT_DAGSTER_VERSION
    pvc_size: str = "10Gi"
    storage_class: str | None = None
    pvc_access_mode: PvcAccessMode = DEFAULT_PVC_ACCESS_MODE
    release_name: str = "dagster"


@dataclass(frozen=True)
class EcsOptions(ImageOptions):
    s3_bucket: str = DEFAULT_S3_BUCKET
    dagster_image: str = "dagster/dagster-celery-k8s:latest"


@dataclass(frozen=True)
class ComposeOptions(ImageOptions):
    postgres_image: str = DEFAULT_POSTGRES_IMAGE
