"""Renderers: pure functions from a `Fleet` to the files of other platforms.

Every `render_*` function returns a `Rendered` mapping (relative path -> YAML
object(s) or text) and touches no file; `write.py` is the only I/O and is what
the CLI calls. Targets: Kubernetes (`k8s`), Flux (`flux`), ECS CloudFormation
(`ecs`), docker compose (`compose`), a Dockerfile per repo (`dockerfile`) and a
GitHub Actions workflow (`ci`). Kubernetes, Flux, ECS and compose serve the
Dagster UI through dagfleet's front door only (`frontdoor.py` and its per-target
modules `k8s_frontdoor.py`, `ecs_frontdoor.py`; compose in `compose.py`).
"""

from dagfleet.render.ci import render_ci
from dagfleet.render.common import Rendered
from dagfleet.render.compose import render_compose
from dagfleet.render.dockerfile import render_dockerfile
from dagfleet.render.ecs import render_ecs
from dagfleet.render.flux import render_flux
from dagfleet.render.k8s import render_k8s
from dagfleet.render.options import ComposeOptions, EcsOptions, K8sOptions

__all__ = [
    "ComposeOptions",
    "EcsOptions",
    "K8sOptions",
    "Rendered",
    "render_ci",
    "render_compose",
    "render_dockerfile",
    "render_ecs",
    "render_flux",
    "render_k8s",
]
