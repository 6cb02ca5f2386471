"""Typed, immutable models of fleet.yaml and repos/<name>.yaml.

Repo files keep the shape of seed 004's `config.yml` (name, git_url, branch,
python_file | module_name | package_name, working_directory, environment,
resources, s3_prefix) and add per-environment refs (`branches`), pins, the
environments a repo runs in, a poll period and `suspend`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from dagfleet.spec import names, references
from dagfleet.spec.alerts import AlertsSpec, RepoAlerts
from dagfleet.spec.auth import AuthSpec
from dagfleet.spec.credentials import RepoCredentials


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _raise(error: str | None) -> None:
    if error:
        raise ValueError(error)


def _checked(check: Callable[[str], str | None]) -> AfterValidator:
    """A pydantic validator from one of `names`' checks (None means valid)."""

    def validate(value: str) -> str:
        _raise(check(value))
        return value

    return AfterValidator(validate)


# Strings whose validity `names` decides; errors name the field they sit in.
RepoName = Annotated[str, _checked(names.check_repo_name)]
EnvName = Annotated[str, _checked(names.check_env_name)]
FleetName = Annotated[str, _checked(names.check_fleet_name)]
EnvVarName = Annotated[str, _checked(names.check_env_var_name)]
GitUrl = Annotated[str, _checked(names.check_git_url)]
GitRef = Annotated[str, _checked(names.check_git_ref)]
RelativePath = Annotated[str, _checked(names.check_relative_path)]
StoragePrefix = Annotated[str, _checked(names.check_storage_prefix)]
ModuleName = Annotated[str, _checked(names.check_module_name)]
SecretFile = Annotated[str, _checked(names.check_secret_file)]
Attribute = Annotated[str, _checked(names.check_attribute)]


class EnvVar(_Model):
    """One environment variable: a literal value or a reference resolved at code-server start.

    `from_env` names a variable of dagfleet's own environment; `from_file` a file
    holding the value (a mounted secret). References are how secrets stay out of git.
    """

    name: EnvVarName
    value: str | None = None
    from_env: EnvVarName | None = None
    from_file: SecretFile | None = Field(
        default=None,
        description=(
            "A file holding the value, read when the code server starts: relative to the "
            "fleet root, or absolute for a secret an operator mounts outside it "
            "(e.g. /run/secrets/db-password). No '..', NUL or leading '-'."
        ),
    )

    @field_validator("value")
    @classmethod
    def _references(cls, v: str | None) -> str | None:
        if v is not None:
            _raise(references.check(v))
        return v

    @model_validator(mode="after")
    def _one_source(self) -> EnvVar:
        given = [x for x in (self.value, self.from_env, self.from_file) if x is not None]
        if len(given) != 1:
            raise ValueError(
                f"{self.name}: give exactly one of value, from_env (an environment variable "
                "holding the secret) or from_file (a file holding it)"
            )
        return self

    @property
    def is_secret(self) -> bool:
        return self.value is None


class Resources(_Model):
    """ECS-style units as in seed 004: cpu in 1/1024 vCPU, memory in MiB."""

    cpu: Annotated[int, Field(gt=0, le=65536)] = 256
    memory: Annotated[int, Field(gt=0, le=1048576)] = 512


class BuildStep(_Model):
    """A command run after the env is installed and before the load check (e.g. `dbt
    parse`), in the commit's tree, with the location's environment values and the
    env's `bin/` first on PATH. A step that fails is a BuildFailed condition."""

    run: Annotated[str, Field(min_length=1, max_length=4096)]
    working_directory: RelativePath = "."
    timeout: Annotated[float, Field(gt=0, le=7200)] = 600.0

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: object) -> object:
        return {"run": data} if isinstance(data, str) else data

    @field_validator("run")
    @classmethod
    def _one_command(cls, v: str) -> str:
        if "\0" in v:
            raise ValueError("the command contains a NUL byte")
        return v


Requirement = Annotated[str, _checked(names.check_requirement)]


class UvControls(_Model):
    """uv's resolution controls for a repo's env (and its Dockerfile): `constraints`
    limit versions without adding packages; `overrides` replace what any package
    asks for. With a uv.lock they apply to what dagfleet adds, the lock wins."""

    constraints: list[Requirement] = Field(default_factory=list)
    overrides: list[Requirement] = Field(default_factory=list)


class CodeTarget(_Model):
    """What a code server loads: exactly one of python_file, module_name, package_name."""

    python_file: str | None = None
    module_name: str | None = None
    package_name: str | None = None
    attribute: str | None = None
    working_directory: str = "."

    @property
    def kind(self) -> Literal["python_file", "module_name", "package_name"]:
        if self.python_file:
            return "python_file"
        if self.module_name:
            return "module_name"
        return "package_name"

    @property
    def value(self) -> str:
        return self.python_file or self.module_name or self.package_name or ""

    def dagster_args(self) -> list[str]:
        """The loadable-target flags of `dagster api grpc` / `dagster code-server start`."""
        flag = {"python_file": "-f", "module_name": "-m", "package_name": "--package-name"}
        args = [flag[self.kind], self.value, "--working-directory", "."]
        if self.attribute:
            args += ["-a", self.attribute]
        return args


def named_target(spec: RepoSpec | LocationEntry) -> CodeTarget | None:
    """The target a repo file (or one of its locations) names; None to discover it."""
    if not (spec.python_file or spec.module_name or spec.package_name):
        return None
    return CodeTarget(
        python_file=spec.python_file,
        module_name=spec.module_name,
        package_name=spec.package_name,
        attribute=spec.attribute,
        working_directory=spec.working_directory,
    )


class LocationEntry(_Model):
    """One of several code locations in a repository (a monorepo): its own working
    directory and target, plus values and build steps added to the repo's.

    Named `<repo>-<name>-<env>`; a repo without `locations` keeps `<repo>-<env>`.
    """

    name: RepoName
    working_directory: RelativePath = "."
    python_file: RelativePath | None = None
    module_name: ModuleName | None = None
    package_name: ModuleName | None = None
    attribute: Attribute | None = None
    environment: list[EnvVar] = Field(default_factory=list)
    build: list[BuildStep] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_target(self) -> LocationEntry:
        given = [t for t in (self.python_file, self.module_name, self.package_name) if t]
        if len(given) > 1:
            raise ValueError(
                f"{self.name}: give at most one of python_file, module_name and package_name"
            )
        return self

    @property
    def code_target(self) -> CodeTarget | None:
        return named_target(self)


class RepoSpec(_Model):
    """One git repository holding Dagster code (`repos/<name>.yaml`)."""

    name: RepoName
    git_url: GitUrl
    credentials: RepoCredentials | None = None
    branch: GitRef | None = None
    branches: dict[str, str] = Field(default_factory=dict)
    pins: dict[str, str] = Field(default_factory=dict)
    environments: list[str] | None = None
    python_file: RelativePath | None = None
    module_name: ModuleName | None = None
    package_name: ModuleName | None = None
    attribute: Attribute | None = None
    working_directory: RelativePath = "."
    environment: list[EnvVar] = Field(default_factory=list)
    resources: Resources = Field(default_factory=Resources)
    s3_prefix: StoragePrefix | None = None
    poll_interval: Annotated[float, Field(gt=0, le=86400)] | None = None
    build: list[BuildStep] = Field(default_factory=list)
    uv: UvControls = Field(default_factory=UvControls)
    locations: list[LocationEntry] = Field(default_factory=list)
    suspend: bool = False
    alerts: RepoAlerts | None = None  # policies for this repo's locations (spec/alerts.py)

    @field_validator("locations")
    @classmethod
    def _entries(cls, v: list[LocationEntry]) -> list[LocationEntry]:
        seen: set[str] = set()
        for entry in v:
            if entry.name in seen:
                raise ValueError(f"{entry.name} is listed twice: give each location its own name")
            seen.add(entry.name)
        return v

    @field_validator("branches")
    @classmethod
    def _branches(cls, v: dict[str, str]) -> dict[str, str]:
        for env, ref in v.items():
            _raise(names.check_env_name(env))
            _raise(names.check_git_ref(ref))
        return v

    @field_validator("pins")
    @classmethod
    def _pins(cls, v: dict[str, str]) -> dict[str, str]:
        for env, pin in v.items():
            _raise(names.check_env_name(env))
            _raise(names.check_pin(pin))
        return v

    @field_validator("environments")
    @classmethod
    def _envs(cls, v: list[str] | None) -> list[str] | None:
        for env in v or []:
            _raise(names.check_env_name(env))
        return v

    @field_validator("environment")
    @classmethod
    def _unique_vars(cls, v: list[EnvVar]) -> list[EnvVar]:
        seen: set[str] = set()
        for var in v:
            if var.name in seen:
                raise ValueError(f"{var.name} is set twice: keep one entry")
            seen.add(var.name)
        return v

    @model_validator(mode="after")
    def _one_target(self) -> RepoSpec:
        given = [t for t in (self.python_file, self.module_name, self.package_name) if t]
        if len(given) > 1:
            raise ValueError(
                "give at most one of python_file, module_name and package_name "
                "(none lets dagfleet read [tool.dg]/[tool.dagster] or workspace.yaml)"
            )
        if self.locations and (given or self.working_directory != "."):
            raise ValueError(
                "with `locations`, each location names its own working_directory and "
                "target: move them from the repo into its locations"
            )
        for entry in self.locations:
            base = self.base_name(entry.name)
            if len(base) > names.MAX_REPO_NAME:
                raise ValueError(
                    f"location {entry.name!r}: {base!r} is {len(base)} characters long; "
                    f"the repo and location names together may have {names.MAX_REPO_NAME}"
                )
        return self

    def base_name(self, entry: str | None) -> str:
        """What location names start with: `<repo>`, or `<repo>-<entry>` in a monorepo."""
        return self.name if entry is None else f"{self.name}-{entry}"

    def entry_names(self) -> list[str | None]:
        """The repo's locations per environment: None for a single-location repo."""
        return [e.name for e in self.locations] or [None]

    def entry(self, name: str | None) -> LocationEntry | None:
        return next((e for e in self.locations if e.name == name), None)

    def location_names(self, env: str) -> list[str]:
        """Every location this repo has in `env` (none when it does not run there)."""
        if not self.runs_in(env):
            return []
        return [location_name(self.base_name(e), env) for e in self.entry_names()]

    def target_for(self, entry: str | None) -> tuple[CodeTarget | None, str]:
        """(the target named in the repo file or None to discover, working directory)."""
        found = self.entry(entry)
        if found is not None:
            return found.code_target, found.working_directory
        return self.code_target, self.working_directory

    def environment_for(self, entry: str | None) -> list[EnvVar]:
        """The repo's values, then the location's (which win on the same name)."""
        found = self.entry(entry)
        extra = found.environment if found is not None else []
        names_ = {v.name for v in extra}
        return [v for v in self.environment if v.name not in names_] + list(extra)

    def build_for(self, entry: str | None) -> list[BuildStep]:
        found = self.entry(entry)
        return self.build + (found.build if found is not None else [])

    @property
    def code_target(self) -> CodeTarget | None:
        """The target named in the repo file, or None to discover it from the checkout."""
        return named_target(self)

    @property
    def storage_prefix(self) -> str:
        """The repo's prefix under `<root>/<env>/`: `s3_prefix` (seed 004), else `repos/<name>`.

        It applies to local roots too; the loader refuses prefixes that overlap.
        """
        return names.normalize_prefix(self.s3_prefix or f"repos/{self.name}")

    def ref_for(self, env: EnvironmentSpec) -> str:
        """The branch this repo follows in `env`.

        Most specific first: the repo's `branches[env]`, the repo's `branch`, the
        environment's default branch (seed 000: A follows A), then `main`.
        """
        return self.branches.get(env.name) or self.branch or env.branch or "main"

    def runs_in(self, env: str) -> bool:
        return self.environments is None or env in self.environments


class EnvironmentSpec(_Model):
    """An isolated stage (seed 000's A and B): default branch, vars, debug and playground."""

    name: EnvName
    branch: GitRef | None = None
    env: dict[str, str] = Field(default_factory=dict)
    debug: bool = False
    playground: bool = False

    @field_validator("env")
    @classmethod
    def _vars(cls, v: dict[str, str]) -> dict[str, str]:
        for key in v:
            _raise(names.check_env_var_name(key))
        return v


class PostgresSpec(_Model):
    """Dagster's run, event and schedule storage in PostgreSQL (dagster-postgres)."""

    host: str = "127.0.0.1"
    port: Annotated[int, Field(gt=0, lt=65536)] = 5432
    user: str = "postgres"
    password_env: EnvVarName | None = None
    db: str = "postgres"


class RunQueueSpec(_Model):
    """Queue runs in the daemon (QueuedRunCoordinator) instead of launching them at once."""

    max_concurrent_runs: Annotated[int, Field(ge=-1)] = 10
    dequeue_interval_seconds: Annotated[int, Field(ge=1, le=60)] = 1


class Endpoint(_Model):
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, lt=65536)]


class InstanceSpec(_Model):
    """The central Dagster instance and dagfleet's own API server."""

    webserver: Endpoint = Field(default_factory=lambda: Endpoint(port=3000))
    api: Endpoint = Field(default_factory=lambda: Endpoint(port=3030))
    postgres: PostgresSpec | None = None
    run_queue: RunQueueSpec | None = None
    debug_port_base: Annotated[int, Field(gt=0, lt=65000)] = 5678
    warm_forks: bool = Field(
        default=True,
        description=(
            "Fork code servers, run workers and step processes from warm parents that have "
            "already imported Dagster (docs/capacity.md). false starts each from a fresh "
            "interpreter, as stock Dagster does."
        ),
    )
    dagster: dict[str, Any] = Field(
        default_factory=dict,
        description=(
            "Settings merged into the instance's dagster.yaml (run_monitoring, run_retries, "
            "retention, telemetry, sensors, ...), checked against Dagster's instance config "
            "schema when the fleet loads. Storage, compute logs, the run launcher and the "
            "run coordinator are dagfleet's: see docs/instance.md."
        ),
    )


class StorageSpec(_Model):
    """Where each location's data lives: a local directory or s3://bucket/prefix."""

    root: str = ".dagfleet/data"
    endpoint_url: str | None = None

    @field_validator("root")
    @classmethod
    def _root(cls, v: str) -> str:
        if not v or "\0" in v:
            raise ValueError("the storage root is empty: give a directory or s3://bucket/prefix")
        return v

    @property
    def is_s3(self) -> bool:
        return self.root.startswith("s3://")


def duplicate_env_name(names: list[object]) -> str | None:
    """The first environment name given twice (case-insensitively), as an error message."""
    seen: set[str] = set()
    for name in names:
        if not isinstance(name, str):
            continue
        if name.lower() in seen:
            return (
                f"environment {name!r} is defined twice (names are compared "
                "case-insensitively because Kubernetes lower-cases them)"
            )
        seen.add(name.lower())
    return None


class FleetDefaults(_Model):
    poll_interval: Annotated[float, Field(gt=0, le=86400)] = 10.0


class FleetSpec(_Model):
    """fleet.yaml."""

    name: FleetName = "dagfleet"
    instance: InstanceSpec = Field(default_factory=InstanceSpec)
    storage: StorageSpec = Field(default_factory=StorageSpec)
    defaults: FleetDefaults = Field(default_factory=FleetDefaults)
    environments: list[EnvironmentSpec] = Field(default_factory=list, validate_default=True)
    alerts: AlertsSpec = Field(default_factory=AlertsSpec)  # channels, policies (spec/alerts.py)
    auth: AuthSpec = Field(default_factory=AuthSpec)  # front door users and roles (spec/auth.py)

    @field_validator("environments", mode="before")
    @classmethod
    def _some(cls, v: object) -> object:
        if not v:
            raise ValueError("define at least one environment, e.g. [{name: A}, {name: B}]")
        return v

    @field_validator("environments")
    @classmethod
    def _unique(cls, v: list[EnvironmentSpec]) -> list[EnvironmentSpec]:
        duplicate = duplicate_env_name([env.name for env in v])
        if duplicate:
            raise ValueError(duplicate)
        return v


class LocationSpec(_Model):
    """One Dagster code location: a repo in an environment (or a playground)."""

    name: str
    repo: str
    env: str
    ref: str
    pin: str | None = None
    poll_interval: float
    playground: bool = False
    entry: str | None = None  # the repo's `locations` entry, in a monorepo


class Fleet(_Model):
    """The loaded fleet: fleet.yaml, every repo file and where they live."""

    root: str
    spec: FleetSpec
    repos: dict[str, RepoSpec] = Field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.spec.name

    def environment(self, name: str) -> EnvironmentSpec:
        for env in self.spec.environments:
            if env.name == name:
                return env
        raise KeyError(name)

    def locations(self) -> list[LocationSpec]:
        """Every location, repo locations first, in a stable order."""
        out: list[LocationSpec] = []
        for repo in sorted(self.repos.values(), key=lambda r: r.name):
            if repo.suspend:
                continue
            for env in self.spec.environments:
                if not repo.runs_in(env.name):
                    continue
                for entry in repo.entry_names():
                    out.append(
                        LocationSpec(
                            name=location_name(repo.base_name(entry), env.name),
                            repo=repo.name,
                            env=env.name,
                            ref=repo.ref_for(env),
                            pin=repo.pins.get(env.name),
                            poll_interval=repo.poll_interval or self.spec.defaults.poll_interval,
                            entry=entry,
                        )
                    )
        for env in self.spec.environments:
            if env.playground:
                out.append(
                    LocationSpec(
                        name=f"playground-{env.name}",
                        repo="playground",
                        env=env.name,
                        ref="",
                        poll_interval=self.spec.defaults.poll_interval,
                        playground=True,
                    )
                )
        return out


def location_name(repo: str, env: str) -> str:
    return f"{repo}-{env}"
