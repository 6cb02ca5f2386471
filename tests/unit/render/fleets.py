"""Fleets the render tests share: the default fleet and a 3-repo x 2-environment fleet."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

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
from dagfleet.render.flux import FluxOptions
from dagfleet.spec.defaults import default_fleet_document, medallion_repo_document
from dagfleet.spec.models import Fleet, FleetSpec, RepoSpec

SECRET_ENV = "DAGFLEET_TEST_SECRET_TOKEN"
SECRET_VALUE = "s3cr3t-sentinel-9f2c1e"
OIDC_SECRET_ENV = "DAGFLEET_TEST_OIDC_SECRET"


def sso_file_fleet(secret_file: str = "secrets/oidc-client-secret") -> Fleet:
    """The default fleet with single sign-on whose client secret is a file (`from_file`,
    relative to the fleet directory or absolute)."""
    doc = default_fleet_document()
    doc["auth"] = {
        "users_file": ".dagfleet/users",
        "oidc": {
            "issuer": "https://sso.example.com/realms/data",
            "client_id": "dagfleet",
            "client_secret": {"from_file": secret_file},
            "redirect_url": "https://dagster.example.com/auth/oidc/callback",
        },
        "roles": [{"role": "viewer", "users": ["alice"], "environments": ["A"]}],
    }
    return make_fleet(doc, [medallion_repo_document("https://git.example.com/data/medallion.git")])


def make_fleet(fleet_doc: dict[str, Any], repo_docs: list[dict[str, Any]]) -> Fleet:
    repos = {d["name"]: RepoSpec.model_validate(d) for d in repo_docs}
    return Fleet(root="/fleet", spec=FleetSpec.model_validate(fleet_doc), repos=repos)


def default_fleet() -> Fleet:
    return make_fleet(
        default_fleet_document(),
        [medallion_repo_document("https://git.example.com/data/medallion.git")],
    )


def three_repo_fleet(secret_file: str = "/run/secrets/warehouse-password") -> Fleet:
    """Three repos in dev and prod: one per target kind, one with no target, secrets in two."""
    fleet_doc = {
        "name": "analytics",
        "storage": {"root": "s3://lake-bucket/dagster"},
        "instance": {"run_queue": {"max_concurrent_runs": 5}},
        "auth": {
            "oidc": {"issuer": "https://sso.example.com", "client_id": "dagfleet",
                     "client_secret": {"from_env": OIDC_SECRET_ENV}},
            "roles": [{"role": "admin", "groups": ["platform"]},
                      {"role": "launcher", "groups": ["analysts"], "environments": ["dev"]}],
        },
        "environments": [
            {"name": "dev", "branch": "develop", "debug": True, "playground": True,
             "env": {"LOG_LEVEL": "debug"}},
            {"name": "prod", "branch": "main"},
        ],
    }  # fmt: skip
    repos = [
        {
            "name": "sales",
            "git_url": "https://git.example.com/data/sales.git",
            "module_name": "sales.definitions",
            "resources": {"cpu": 512, "memory": 1024},
            "environment": [
                {"name": "REGION", "value": "eu-west-1"},
                {"name": "API_TOKEN", "from_env": SECRET_ENV},
                {"name": "WAREHOUSE_PASSWORD", "from_file": secret_file},
            ],
        },
        {
            "name": "marketing",
            "git_url": "git@git.example.com:data/marketing.git",
            "python_file": "pipelines/defs.py",
            "working_directory": "pipelines",
            "branches": {"prod": "release"},
            "pins": {"prod": "v1.2.0"},
        },
        {
            "name": "finance-models-with-a-rather-long-name",
            "git_url": "https://git.example.com/data/finance.git",
            "environment": [{"name": "FINANCE_KEY", "from_env": SECRET_ENV}],
            "resources": {"cpu": 1024, "memory": 2048},
        },
    ]
    return make_fleet(fleet_doc, repos)


FLEETS: dict[str, Callable[[], Fleet]] = {
    "default": default_fleet,
    "analytics": three_repo_fleet,
}


def render_all(
    fleet: Fleet, *, cnpg: bool = True, node_port: int | None = None
) -> dict[str, Rendered]:
    """Every target of a fleet, keyed by target name (dockerfiles as `dockerfile/<repo>`)."""
    k8s = K8sOptions(cnpg=cnpg, node_port=node_port)
    out: dict[str, Rendered] = {
        "k8s": render_k8s(fleet, k8s),
        "flux": render_flux(fleet, FluxOptions(k8s=k8s)),
        "ecs": render_ecs(fleet, EcsOptions()),
        "compose": render_compose(fleet, ComposeOptions()),
        "ci": render_ci(fleet),
    }
    for repo in sorted(fleet.repos):
        out[f"dockerfile/{repo}"] = render_dockerfile(fleet, repo)
    return out
