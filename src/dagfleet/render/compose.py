"""`render compose`: seed 003's three services from one image, per environment.

Per environment `<env>`: one code server per location (`<location>`, gRPC on
4000 inside the network), a webserver (`webserver-<env>`, port 3001 on the
compose network only: never published), the front door (`frontdoor-<env>`,
`dagfleet frontdoor serve` in front of that webserver, published on 3001, 3002,
... in environment order, the ports the webserver had), a daemon (`daemon-<env>`)
and a Postgres (`postgres-<env>`), with volumes for the database, DAGSTER_HOME
(compute logs shared by all three) and, when storage is local, the data
(`/data/<env>/repos/<repo>/...` per location, the layout `dagfleet up` uses;
every service mounts the whole volume, so this separates repos by path only). The
webserver and daemon use the image of the environment's first repo: every
image from `render dockerfile` carries dagster-webserver and dagster-postgres,
and dagfleet-runtime for the step-log manager of an s3:// root (compute_logs.py).
Runs use the DefaultRunLauncher, which starts them inside the code servers.

Secrets are never written: `from_env` variables become `${NAME:?...}`
interpolations read when `docker compose up` runs, `from_file` ones become
compose secrets read into the variable by the launcher, and the database
password is `${DAGSTER_POSTGRES_PASSWORD}` from the shell or an `.env` file.
The front door reads the fleet from compose configs (fleet.yaml and the repo
files, inline: references only), its session key from the compose secret
`dagfleet-session-key` (the shell's DAGFLEET_SESSION_KEY), its users from the
secret `dagfleet-users` (the file DAGFLEET_USERS_FILE names, default ./users),
API tokens from `${DAGFLEET_API_TOKENS}` and the OIDC client secret from what
fleet.yaml's `auth.oidc.client_secret` names (a variable, or a file as a secret).
Playgrounds are not rendered here (they rely on `kubectl cp`).
"""

from __future__ import annotations

import json
from typing import Any

import yaml

from dagfleet.render import common as c
from dagfleet.render import compute_logs
from dagfleet.render import frontdoor as fd
from dagfleet.render.options import ComposeOptions
from dagfleet.spec.models import Fleet

PG_PASSWORD = "${DAGSTER_POSTGRES_PASSWORD:?set DAGSTER_POSTGRES_PASSWORD}"
SESSION_SECRET = "dagfleet-session-key"
USERS_SECRET = "dagfleet-users"
USERS_FILE = "${DAGFLEET_USERS_FILE:-./users}"
OIDC_SECRET = "dagfleet-oidc-client-secret"


def instance_yaml(fleet: Fleet, env_name: str) -> dict[str, Any]:
    """An environment's dagster.yaml: Postgres, and with an s3:// storage root the step
    logs under each location's `logs/` in the bucket (keys of no run in the environment's
    `system/compute_logs`, compute_logs.py); with a local root the default local manager
    under the shared DAGSTER_HOME volume serves them."""

    def env(name: str) -> dict[str, str]:
        return {"env": name}

    logs: dict[str, Any] = {}
    if fleet.spec.storage.is_s3:
        logs["compute_logs"] = compute_logs.dagster_yaml_section(fleet, "", env_name)
    return {
        **logs,
        "storage": {
            "postgres": {
                "postgres_db": {
                    "username": env("DAGSTER_POSTGRES_USER"),
                    "password": env("DAGSTER_POSTGRES_PASSWORD"),
                    "hostname": env("DAGSTER_POSTGRES_HOST"),
                    "db_name": env("DAGSTER_POSTGRES_DB"),
                    "port": 5432,
                }
            }
        },
        "telemetry": {"enabled": False},
    }


def _secret_name(repo: str, env: str, key: str) -> str:
    return c.k8s_name(repo, env, key)


def render_compose(fleet: Fleet, opts: ComposeOptions | None = None) -> c.Rendered:
    c.require_remote_git_urls(fleet, "docker compose")  # images clone from there
    opts = opts or ComposeOptions()
    services: dict[str, Any] = {}
    volumes: dict[str, Any] = {}
    secrets: dict[str, Any] = {}
    locations = [loc for loc in fleet.locations() if not loc.playground]
    for index, env in enumerate(fleet.spec.environments):
        e = c.k8s_name(env.name)
        pg = {
            "DAGSTER_POSTGRES_HOST": f"postgres-{e}",
            "DAGSTER_POSTGRES_USER": "dagster",
            "DAGSTER_POSTGRES_DB": "dagster",
            "DAGSTER_POSTGRES_PASSWORD": PG_PASSWORD,
            "DAGSTER_HOME": c.DAGSTER_HOME,
        }
        mounts = [f"dagster-home-{e}:{c.DAGSTER_HOME}"]
        volumes[f"dagster-home-{e}"] = {}
        volumes[f"pgdata-{e}"] = {}
        if not fleet.spec.storage.is_s3:
            volumes[f"data-{e}"] = {}
            mounts.append(f"data-{e}:{c.DATA_ROOT}")
        env_locs = [loc for loc in locations if loc.env == env.name]
        for loc in env_locs:
            name = c.location_k8s_name(loc)
            storage = c.container_storage_env(fleet, loc.env, loc.repo)
            literal = c.literal_env(fleet, loc, checkout=c.APP_DIR, storage=storage)
            environment = {**literal, **storage, **pg}
            environment.update(
                {
                    "DAGFLEET_CODE_DIR": c.working_dir(fleet, loc, c.APP_DIR),
                    "DAGFLEET_PORT": str(c.CODE_PORT),
                }
            )
            args = c.target_args(fleet, loc, c.APP_DIR)
            if args is not None:
                environment["DAGFLEET_TARGET_ARGS"] = json.dumps(args)
            service_secrets = []
            for var in c.secret_vars(fleet, loc):
                if var.from_env:
                    environment[var.name] = f"${{{var.from_env}:?set {var.from_env}}}"
                else:
                    sname = _secret_name(loc.repo, loc.env, c.secret_key(var))
                    secrets[sname] = {"file": var.from_file}
                    service_secrets.append(sname)
                    environment[f"DAGFLEET_FILE__{var.name}"] = f"/run/secrets/{sname}"
            service: dict[str, Any] = {
                "image": opts.repo_image(loc.repo),
                "command": ["python", c.LAUNCHER_PATH],
                "environment": environment,
                "volumes": list(mounts),
                "depends_on": {f"postgres-{e}": {"condition": "service_healthy"}},
                "healthcheck": {
                    "test": ["CMD", "dagster", "api", "grpc-health-check", "-p", str(c.CODE_PORT)],
                    "interval": "10s",
                    "timeout": "5s",
                    "retries": 6,
                    "start_period": "30s",
                },
                "restart": "unless-stopped",
            }
            if service_secrets:
                service["secrets"] = service_secrets
            services[name] = service
        workspace = {
            "load_from": [
                {
                    "grpc_server": {
                        "host": c.location_k8s_name(loc),
                        "port": c.CODE_PORT,
                        "location_name": loc.name,
                    }
                }
                for loc in env_locs
            ]
        }
        image = opts.repo_image(env_locs[0].repo) if env_locs else opts.repo_image("dagster")
        write = (
            'printf "%s" "$$DAGSTER_YAML" > "$$DAGSTER_HOME/dagster.yaml" && '
            'printf "%s" "$$WORKSPACE_YAML" > "$$DAGSTER_HOME/workspace.yaml" && exec '
        )
        instance_env = {
            **pg,
            # fleet.yaml's instance.dagster: Dagster settings the loader checked. `$$`:
            # compose would otherwise interpolate a `$` in a user's value.
            "DAGSTER_YAML": _literal(
                yaml.safe_dump(
                    {**instance_yaml(fleet, env.name), **fleet.spec.instance.dagster},
                    sort_keys=False,
                )
            ),
            "WORKSPACE_YAML": _literal(yaml.safe_dump(workspace, sort_keys=False)),
        }
        depends = {f"postgres-{e}": {"condition": "service_healthy"}}
        depends.update(
            {c.location_k8s_name(loc): {"condition": "service_started"} for loc in env_locs}
        )
        port = c.WEBSERVER_PORT + index
        services[f"webserver-{e}"] = {
            "image": image,
            "entrypoint": ["sh", "-c"],
            "command": [
                write + f"dagster-webserver -h 0.0.0.0 -p {c.WEBSERVER_PORT} "
                '-w "$$DAGSTER_HOME/workspace.yaml"'
            ],
            "environment": instance_env,
            "volumes": list(mounts),
            "depends_on": depends,
            "restart": "unless-stopped",
        }
        services[f"frontdoor-{e}"] = frontdoor_service(fleet, opts, e, port)
        services[f"daemon-{e}"] = {
            "image": image,
            "entrypoint": ["sh", "-c"],
            "command": [write + 'dagster-daemon run -w "$$DAGSTER_HOME/workspace.yaml"'],
            "environment": instance_env,
            "volumes": list(mounts),
            "depends_on": depends,
            "restart": "unless-stopped",
        }
        services[f"postgres-{e}"] = {
            "image": opts.postgres_image,
            "environment": {
                "POSTGRES_USER": "dagster",
                "POSTGRES_DB": "dagster",
                "POSTGRES_PASSWORD": PG_PASSWORD,
            },
            "volumes": [f"pgdata-{e}:/var/lib/postgresql/data"],
            "healthcheck": {
                "test": ["CMD-SHELL", "pg_isready -U dagster -d dagster"],
                "interval": "5s",
                "timeout": "5s",
                "retries": 10,
            },
            "restart": "unless-stopped",
        }
    secrets.update(frontdoor_secrets(fleet))
    doc: dict[str, Any] = {"name": fleet.name, "services": services, "volumes": volumes}
    doc["secrets"] = secrets
    doc["configs"] = {
        _config_name(path): {"content": _literal(text)}
        for path, text in fd.fleet_files(fleet).items()
    }
    return {"compose.yaml": doc}


def _config_name(path: str) -> str:
    """`fleet.yaml` -> dagfleet-fleet.yaml, `repos/x.yaml` -> dagfleet-repos-x.yaml."""
    return "dagfleet-" + path.replace("/", "-")


def frontdoor_secrets(fleet: Fleet) -> dict[str, Any]:
    """The front door's compose secrets: references to the shell's environment and files."""
    out: dict[str, Any] = {
        SESSION_SECRET: {"environment": "DAGFLEET_SESSION_KEY"},
        USERS_SECRET: {"file": USERS_FILE},
    }
    oidc = fd.oidc_secret(fleet)
    if oidc is not None and oidc.path is not None:
        out[OIDC_SECRET] = {"file": oidc.path if oidc.path.startswith("/") else f"./{oidc.key}"}
    return out


def frontdoor_service(fleet: Fleet, opts: ComposeOptions, env: str, port: int) -> dict[str, Any]:
    """`frontdoor-<env>`: the only published port of the environment, in front of
    `webserver-<env>`; read-only, no new privileges, secrets by reference only."""
    environment: dict[str, str] = {
        "DAGFLEET_SESSION_KEY_FILE": f"/run/secrets/{SESSION_SECRET}",
        "DAGFLEET_API_TOKENS": "${DAGFLEET_API_TOKENS:-}",
        "PYTHONUNBUFFERED": "1",
        "HOME": "/tmp",
    }
    service_secrets: list[Any] = [SESSION_SECRET, USERS_SECRET]
    oidc = fd.oidc_secret(fleet)
    if oidc is not None and oidc.env is not None:
        environment[oidc.env] = f"${{{oidc.env}:?set {oidc.env} (the OIDC client secret)}}"
    elif oidc is not None:
        service_secrets.append({"source": OIDC_SECRET, "target": oidc.container_path()})
    health = f"http://127.0.0.1:{fd.FRONTDOOR_PORT}{fd.HEALTH_PATH}"
    return {
        "image": opts.frontdoor(),
        "command": fd.command(
            f"http://webserver-{env}:{c.WEBSERVER_PORT}",
            users_file=f"/run/secrets/{USERS_SECRET}",
            public_url=opts.public_url,
        ),
        "environment": environment,
        "ports": [f"{port}:{fd.FRONTDOOR_PORT}"],
        "configs": [
            {"source": _config_name(path), "target": f"{fd.FLEET_DIR}/{path}"}
            for path in fd.fleet_files(fleet)
        ],
        "secrets": service_secrets,
        "read_only": True,
        "tmpfs": ["/tmp"],
        "security_opt": ["no-new-privileges:true"],
        "healthcheck": {
            "test": [
                "CMD",
                "python",
                "-c",
                f"import urllib.request; urllib.request.urlopen({health!r}, timeout=3)",
            ],
            "interval": "10s",
            "timeout": "5s",
            "retries": 6,
            "start_period": "20s",
        },
        "depends_on": {f"webserver-{env}": {"condition": "service_started"}},
        "restart": "unless-stopped",
    }


def _literal(value: str) -> str:
    """`value` as compose passes it through unchanged: `$` escaped as `$$`."""
    return value.replace("$", "$$")
