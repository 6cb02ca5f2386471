"""Read fleet.yaml and repos/*.yaml into a `Fleet`, reporting every problem at once."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from dagfleet.spec import instance_settings, strictyaml
from dagfleet.spec.alerts import repo_problems as alert_problems
from dagfleet.spec.errors import SpecError, SpecProblem
from dagfleet.spec.models import Fleet, FleetSpec, RepoSpec, duplicate_env_name
from dagfleet.spec.names import check_env_name, prefixes_overlap

FLEET_FILE = "fleet.yaml"
REPOS_DIR = "repos"
RESERVED_REPO_NAMES = frozenset({"playground"})
M = TypeVar("M", bound=BaseModel)


def _field(loc: tuple[int | str, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        else:
            parts.append(("." if parts else "") + item)
    return "".join(parts)


def _problems(file: str, err: ValidationError) -> list[SpecProblem]:
    out = []
    for e in err.errors():
        loc = tuple(x for x in e["loc"] if not str(x).startswith("function-"))
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = "unknown key: remove it or check its spelling"
        elif e["type"] == "missing":
            msg = "required: add it"
        out.append(SpecProblem(file, _field(loc), msg))
    return out


def read_yaml_text(text: str, shown: str) -> tuple[dict[str, Any] | None, list[SpecProblem]]:
    """A fleet file's text as a mapping, read strictly (spec/strictyaml.py: no duplicate
    keys, bounded depth and size); or None and the problems, naming `shown`."""
    try:
        data = strictyaml.parse(text)
    except strictyaml.LimitError as exc:
        return None, [SpecProblem(shown, exc.field, exc.message)]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        return None, [SpecProblem(shown, "", f"{where}invalid YAML: {problem}")]
    if data is None:
        data = {}
    if not isinstance(data, dict):
        return None, [SpecProblem(shown, "", "must be a mapping of keys to values")]
    return data, []


def _read_yaml(path: Path, shown: str) -> tuple[dict[str, Any] | None, list[SpecProblem]]:
    try:
        text = strictyaml.read_text(path)
    except strictyaml.LimitError as exc:
        return None, [SpecProblem(shown, exc.field, exc.message)]
    except (OSError, UnicodeDecodeError) as exc:
        return None, [SpecProblem(shown, "", f"cannot be read: {exc}")]
    return read_yaml_text(text, shown)


def _validate(
    model: type[M], data: dict[str, Any], shown: str
) -> tuple[M | None, list[SpecProblem]]:
    try:
        return model.model_validate(data), []
    except ValidationError as err:
        return None, _problems(shown, err)


def parse_repo(data: dict[str, Any], shown: str) -> RepoSpec:
    """Validate one repo document (from a file or an API body); raises SpecError."""
    repo, problems = _validate(RepoSpec, data, shown)
    if repo is not None and repo.name in RESERVED_REPO_NAMES:
        problems.append(
            SpecProblem(shown, "name", f"{repo.name!r} is reserved for playground locations")
        )
    if problems or repo is None:
        raise SpecError(problems)
    return repo


def load_repo_file(path: Path) -> RepoSpec:
    shown = f"{REPOS_DIR}/{path.name}"
    data, problems = _read_yaml(path, shown)
    if data is None:
        raise SpecError(problems)
    repo = parse_repo(data, shown)
    if repo.name != path.stem:
        raise SpecError(
            [SpecProblem(shown, "name", f"{repo.name!r} must match the file name {path.stem!r}")]
        )
    return repo


def _cross_check(spec: FleetSpec, repos: dict[str, RepoSpec]) -> list[SpecProblem]:
    known = {e.name for e in spec.environments}
    out: list[SpecProblem] = []
    hint = f"known environments: {', '.join(sorted(known))}"
    for repo in repos.values():
        shown = f"{REPOS_DIR}/{repo.name}.yaml"
        for key, envs in (
            ("branches", list(repo.branches)),
            ("pins", list(repo.pins)),
            ("environments", repo.environments or []),
        ):
            for env in envs:
                if env not in known:
                    out.append(SpecProblem(shown, f"{key}.{env}", f"unknown environment; {hint}"))
        out += alert_problems(shown, spec.alerts, repo.alerts)
    return out


def _raw_duplicates(data: dict[str, Any]) -> list[SpecProblem]:
    """Duplicate environments, also when another environment in the list is invalid."""
    envs = data.get("environments")
    if not isinstance(envs, list):
        return []
    names = [e.get("name") if isinstance(e, dict) else None for e in envs]
    valid = [n for n in names if isinstance(n, str) and check_env_name(n) is None]
    if len(valid) == len(names):
        return []  # every item is valid: the model reported any duplicate itself
    message = duplicate_env_name(list(names))
    return [SpecProblem(FLEET_FILE, "environments", message)] if message else []


def _collisions(spec: FleetSpec, repos: dict[str, RepoSpec]) -> list[SpecProblem]:
    """`sales` in `eu-prod` and `sales-eu` in `prod` would both be `sales-eu-prod`."""
    owners: dict[str, str] = {}
    out: list[SpecProblem] = []
    for repo in sorted(repos.values(), key=lambda r: r.name):
        for env in spec.environments:
            for shown in repo.location_names(env.name):
                name = shown.lower()
                if name in owners and owners[name] != repo.name:
                    out.append(
                        SpecProblem(
                            f"{REPOS_DIR}/{repo.name}.yaml",
                            "name",
                            f"location {shown} collides with repo "
                            f"{owners[name]!r}'s location of the same name: rename one repo "
                            "or location",
                        )
                    )
                owners.setdefault(name, repo.name)
    return out


def _prefix_overlaps(repos: dict[str, RepoSpec], others: dict[str, RepoSpec]) -> list[SpecProblem]:
    """Each repo in `repos` needs a storage prefix that no repo in `others` shares or nests in."""
    out: list[SpecProblem] = []
    for repo in sorted(repos.values(), key=lambda r: r.name):
        mine = repo.storage_prefix
        for other in sorted(others.values(), key=lambda r: r.name):
            if other.name == repo.name or not prefixes_overlap(mine, other.storage_prefix):
                continue
            field = "s3_prefix" if repo.s3_prefix else "name"
            out.append(
                SpecProblem(
                    f"{REPOS_DIR}/{repo.name}.yaml",
                    field,
                    f"storage prefix {mine!r} overlaps repo {other.name!r}'s "
                    f"{other.storage_prefix!r}: give each repo a prefix of its own",
                )
            )
    return out


def cross_repo_problems(
    spec: FleetSpec, repo: RepoSpec, others: dict[str, RepoSpec]
) -> list[SpecProblem]:
    """What adding or changing `repo` beside `others` would break (the registry's check)."""
    problems = _cross_check(spec, {repo.name: repo}) + _prefix_overlaps({repo.name: repo}, others)
    mine = {n.lower() for e in spec.environments for n in repo.location_names(e.name)}
    for other in sorted(others.values(), key=lambda r: r.name):
        theirs = [n for e in spec.environments for n in other.location_names(e.name)]
        for name in theirs:
            if other.name != repo.name and name.lower() in mine:
                problems.append(
                    SpecProblem(
                        f"{REPOS_DIR}/{repo.name}.yaml",
                        "name",
                        f"a location would be named {name}, like repo {other.name!r}'s: "
                        "rename the repo",
                    )
                )
    return problems


def _instance_problems(spec: FleetSpec) -> list[SpecProblem]:
    """`instance.dagster`, as Dagster's own instance schema judges it."""
    settings = spec.instance.dagster
    if not settings:
        return []  # no Dagster import for fleets without settings
    found = instance_settings.check(settings, run_queue=spec.instance.run_queue is not None)
    return [SpecProblem(FLEET_FILE, field, message) for field, message in found]


def load_fleet(root: Path) -> Fleet:
    """Load and validate a fleet directory; raises SpecError listing every problem."""
    root = root.resolve()
    problems: list[SpecProblem] = []
    fleet_path = root / FLEET_FILE
    spec: FleetSpec | None = None
    if not fleet_path.exists():
        problems.append(
            SpecProblem(FLEET_FILE, "", f"not found in {root}: run `dagfleet init {root}`")
        )
    else:
        data, file_problems = _read_yaml(fleet_path, FLEET_FILE)
        problems += file_problems
        if data is not None:
            spec, file_problems = _validate(FleetSpec, data, FLEET_FILE)
            problems += file_problems
            if spec is None:
                problems += _raw_duplicates(data)
    repos: dict[str, RepoSpec] = {}
    repo_dir = root / REPOS_DIR
    paths = sorted(repo_dir.glob("*.yaml")) + sorted(repo_dir.glob("*.yml"))
    for path in paths:
        try:
            repo = load_repo_file(path)
        except SpecError as err:
            problems += err.problems
            continue
        if repo.name in repos:
            problems.append(
                SpecProblem(f"{REPOS_DIR}/{path.name}", "name", f"{repo.name!r} is already defined")
            )
            continue
        repos[repo.name] = repo
    if spec is not None:
        problems += _instance_problems(spec)
        problems += _cross_check(spec, repos)
        problems += _collisions(spec, repos)
    problems += _prefix_overlaps(repos, repos)
    if problems or spec is None:
        raise SpecError(problems)
    return Fleet(root=str(root), spec=spec, repos=repos)
