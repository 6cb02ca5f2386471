"""Postgres on Kubernetes: a CloudNativePG `Cluster` (seed 002) or a plain StatefulSet.

Both expose the same `<name>-rw` Service and read credentials from the same
Secret (`username`/`password` keys, type basic-auth), so switching CNPG off
changes nothing else. Two kinds of database are rendered:
- the instance database `dagster-postgres` in the instance namespace, whose
  Secret `dagster-postgresql-secret` the operator creates once (it also carries
  the chart's `postgresql-password` key; see docs/deploy.md);
- one database `postgres` per environment namespace (seed 000's per-environment
  Postgres) whose `postgres-app` Secret CNPG generates (create it yourself
  when CNPG is off); code servers receive it as DAGFLEET_POSTGRES_* variables.
"""

from __future__ import annotations

from typing import Any

from dagfleet.render import common as c
from dagfleet.render.options import K8sOptions
from dagfleet.spec.models import Fleet

INSTANCE_DB = "dagster-postgres"
INSTANCE_SECRET = "dagster-postgresql-secret"
ENV_DB = "postgres"


def env_db_secret() -> str:
    # The name CNPG gives the application user's generated Secret.
    return f"{ENV_DB}-app"


def host(name: str, ns: str) -> str:
    return f"{name}-rw.{ns}.svc.cluster.local"


def database(
    fleet: Fleet,
    opts: K8sOptions,
    *,
    name: str,
    ns: str,
    db: str,
    owner: str,
    secret: str | None,
) -> list[dict[str, Any]]:
    """The objects of one database; `secret` None lets CNPG generate `<name>-app`."""
    meta: dict[str, Any] = {"name": name, "namespace": ns, "labels": c.labels(fleet, "postgres")}
    if opts.cnpg:
        initdb: dict[str, Any] = {"database": db, "owner": owner}
        if secret:
            initdb["secret"] = {"name": secret}
        storage: dict[str, Any] = {"size": opts.pvc_size}
        if opts.storage_class:
            storage["storageClass"] = opts.storage_class
        return [
            {
                "apiVersion": "postgresql.cnpg.io/v1",
                "kind": "Cluster",
                "metadata": meta,
                "spec": {"instances": 1, "bootstrap": {"initdb": initdb}, "storage": storage},
            }
        ]
    secret = secret or f"{name}-app"
    selector = {"dagfleet.dev/postgres": name}
    claim: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": opts.pvc_size}},
    }
    if opts.storage_class:
        claim["storageClassName"] = opts.storage_class

    def from_secret(var: str, key: str) -> dict[str, Any]:
        return {"name": var, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}

    container = {
        "name": "postgres",
        "image": opts.postgres_image,
        "env": [
            from_secret("POSTGRES_USER", "username"),
            from_secret("POSTGRES_PASSWORD", "password"),
            {"name": "POSTGRES_DB", "value": db},
            {"name": "PGDATA", "value": "/var/lib/postgresql/data/pgdata"},
        ],
        "ports": [{"name": "postgres", "containerPort": 5432}],
        "readinessProbe": {"exec": {"command": ["pg_isready", "-U", owner]}, "periodSeconds": 5},
        "volumeMounts": [{"name": "data", "mountPath": "/var/lib/postgresql/data"}],
    }
    return [
        {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": meta,
            "spec": {
                "serviceName": f"{name}-rw",
                "replicas": 1,
                "selector": {"matchLabels": selector},
                "template": {
                    "metadata": {"labels": {**meta["labels"], **selector}},
                    "spec": {"containers": [container]},
                },
                "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": claim}],
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {**meta, "name": f"{name}-rw"},
            "spec": {
                "selector": selector,
                "ports": [{"name": "postgres", "port": 5432, "targetPort": "postgres"}],
            },
        },
    ]


def instance_database(fleet: Fleet, opts: K8sOptions) -> list[dict[str, Any]]:
    ns = c.instance_namespace(fleet)
    return database(
        fleet, opts, name=INSTANCE_DB, ns=ns, db="dagster", owner="dagster", secret=INSTANCE_SECRET
    )


def env_database(fleet: Fleet, opts: K8sOptions, env: str) -> list[dict[str, Any]]:
    ns = c.namespace(fleet, env)
    return database(fleet, opts, name=ENV_DB, ns=ns, db="app", owner="app", secret=None)


def env_database_vars(fleet: Fleet, env: str) -> list[dict[str, Any]]:
    """What a code server needs to reach its environment's database (no secret values)."""
    ref = env_db_secret()
    return [
        {"name": "DAGFLEET_POSTGRES_HOST", "value": host(ENV_DB, c.namespace(fleet, env))},
        {"name": "DAGFLEET_POSTGRES_PORT", "value": "5432"},
        {"name": "DAGFLEET_POSTGRES_DB", "value": "app"},
        {
            "name": "DAGFLEET_POSTGRES_USER",
            "valueFrom": {"secretKeyRef": {"name": ref, "key": "username"}},
        },
        {
            "name": "DAGFLEET_POSTGRES_PASSWORD",
            "valueFrom": {"secretKeyRef": {"name": ref, "key": "password"}},
        },
    ]
