"""fleet.yaml's `instance.dagster`: the user's own dagster.yaml settings, checked by Dagster.

dagfleet writes the instance's dagster.yaml itself; `instance.dagster` is merged
into it. What Dagster accepts there is Dagster's own instance config schema
(`dagster_instance_config_schema`), so the check calls it instead of copying it:
a misspelt key or a wrong type is refused when the fleet loads, naming the field
and the fix. Keys dagfleet sets itself are refused with what to use instead.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from typing import Any

FIELD = "instance.dagster"

# What dagfleet writes itself, and what the user sets instead.
_STORAGE = (
    "dagfleet configures the instance's storage: set `instance.postgres` in fleet.yaml "
    "for PostgreSQL (SQLite under .dagfleet otherwise)"
)
_QUEUE = (
    "dagfleet chooses the run coordinator: set `instance.run_queue` (max_concurrent_runs, "
    "dequeue_interval_seconds) in fleet.yaml to queue runs"
)
MANAGED: dict[str, str] = {
    "storage": _STORAGE,
    "run_storage": _STORAGE,
    "event_log_storage": _STORAGE,
    "schedule_storage": _STORAGE,
    "compute_logs": (
        "dagfleet sends step logs under `storage.root` (a directory or s3://bucket/prefix): "
        "set that in fleet.yaml"
    ),
    "local_artifact_storage": (
        "dagfleet keeps the instance in its own DAGSTER_HOME (.dagfleet/dagster_home); "
        "data goes under `storage.root` in fleet.yaml"
    ),
    "run_launcher": (
        "dagfleet launches runs on each location's code server (rendered deployments use "
        "the K8s or ECS run launcher): remove it"
    ),
    "run_coordinator": _QUEUE,
    "run_queue": _QUEUE,
}


def _keys_at(schema: Mapping[str, Any], path: Sequence[str | int]) -> list[str]:
    """The keys Dagster accepts at `path` (for a 'did you mean'); [] when unknown."""
    from dagster._config import ConfigTypeKind, Shape

    config_type: Any = Shape(dict(schema))  # type: ignore[no-untyped-call]
    for part in path:
        while config_type.kind in (ConfigTypeKind.NONEABLE, ConfigTypeKind.ARRAY):
            config_type = config_type.inner_type
        fields = getattr(config_type, "fields", None)
        if isinstance(part, int) or not fields or part not in fields:
            return []
        config_type = fields[part].config_type
    while config_type.kind == ConfigTypeKind.NONEABLE:
        config_type = config_type.inner_type
    return sorted(getattr(config_type, "fields", None) or {})


def _unknown(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"did you mean `{close[0]}`?" if close else f"known keys: {', '.join(known)}"
    return f"unknown Dagster instance setting: remove it or check its spelling ({hint})"


def _path(error: Any) -> list[str | int]:
    out: list[str | int] = []
    for entry in error.stack.entries:
        name = getattr(entry, "field_name", None)
        out.append(name if name is not None else int(getattr(entry, "list_index", 0)))
    return out


def _join(path: Sequence[str | int]) -> str:
    out = FIELD
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def _problems_of(error: Any, schema: Mapping[str, Any]) -> list[tuple[str, str]]:
    from dagster._config import errors as e

    path = _path(error)
    data = error.error_data
    if isinstance(data, e.FieldNotDefinedErrorData | e.FieldsNotDefinedErrorData):
        names = [data.field_name] if isinstance(data, e.FieldNotDefinedErrorData) else []
        names += list(getattr(data, "field_names", []))
        known = _keys_at(schema, path)
        return [(_join([*path, n]), _unknown(n, known)) for n in names]
    if isinstance(data, e.MissingFieldErrorData | e.MissingFieldsErrorData):
        names = [data.field_name] if isinstance(data, e.MissingFieldErrorData) else []
        names += list(getattr(data, "field_names", []))
        return [(_join([*path, n]), "required by Dagster: add it") for n in names]
    if isinstance(data, e.RuntimeMismatchErrorData):
        expected = data.config_type_snap.given_name or data.config_type_snap.key
        return [
            (_join(path), f"{data.value_rep} is not a {expected}: give a value of type {expected}")
        ]
    # Selectors and the rest: Dagster's first sentence, without its long type dump.
    message = str(error.message).split(' Expected: "', 1)[0]
    return [(_join(path), f"Dagster refuses this setting: {message}")]


def check(settings: Mapping[str, Any], run_queue: bool) -> list[tuple[str, str]]:
    """(field, message) for every problem of `instance.dagster`; [] when Dagster accepts it.

    `run_queue`: fleet.yaml's `instance.run_queue` is set, which Dagster's
    `concurrency.runs` may not be combined with.
    """
    problems = [(f"{FIELD}.{key}", MANAGED[key]) for key in settings if key in MANAGED]
    rest = {k: v for k, v in settings.items() if k not in MANAGED}
    if not rest:
        return problems
    from dagster._config import Shape, validate_config
    from dagster._core.errors import DagsterInvalidConfigError
    from dagster._core.instance.config import (
        dagster_instance_config_schema,
        validate_concurrency_config,
    )

    schema = dagster_instance_config_schema()
    result = validate_config(Shape(dict(schema)), rest)  # type: ignore[no-untyped-call]
    for error in result.errors or []:
        problems += _problems_of(error, schema)
    if result.success and "concurrency" in rest:
        merged = dict(rest)
        if run_queue:
            merged["run_coordinator"] = {
                "class": "QueuedRunCoordinator",
                "config": {"max_concurrent_runs": 0},
            }
        try:
            validate_concurrency_config(merged)
        except DagsterInvalidConfigError as exc:
            message = str(exc).split("\n", 1)[0].replace("`run_coordinator`", "instance.run_queue")
            problems.append((f"{FIELD}.concurrency", message))
    return problems
