"""Find what a checkout's code server loads when the repo file names no target.

Order: `[tool.dagster]` or `[tool.dg]` in pyproject.toml, then a workspace.yaml
at the repository root (seed 000's layout), else a clear error.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import yaml

from dagfleet.spec import CodeTarget
from dagfleet.spec.names import check_module_name, check_relative_path


class DiscoveryError(Exception):
    pass


def discover_target(checkout: Path, working_directory: str = ".") -> CodeTarget:
    project = checkout / working_directory
    pyproject = project / "pyproject.toml"
    if pyproject.is_file():
        try:
            data = tomllib.loads(pyproject.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise DiscoveryError(f"pyproject.toml: invalid TOML: {exc}") from exc
        target = _from_pyproject(data.get("tool", {}), working_directory)
        if target is not None:
            return target
    for name in ("workspace.yaml", "workspace.yml"):
        if (project / name).is_file():
            return _from_workspace(project / name, working_directory)
    raise DiscoveryError(
        "no code target: set module_name, python_file or package_name in the repo file, "
        "or add [tool.dagster] module_name to pyproject.toml, or a workspace.yaml"
    )


def _checked(
    kind: str, value: str, working_directory: str, attribute: str | None = None
) -> CodeTarget:
    error = check_relative_path(value) if kind == "python_file" else check_module_name(value)
    if error is None and working_directory != ".":
        error = check_relative_path(working_directory)
    if error:
        raise DiscoveryError(f"{kind}: {error}")
    return CodeTarget(**{kind: value}, working_directory=working_directory, attribute=attribute)


def _from_pyproject(tool: dict[str, Any], wd: str) -> CodeTarget | None:
    dagster = tool.get("dagster")
    if isinstance(dagster, dict):
        for kind in ("module_name", "python_file", "package_name"):
            if isinstance(dagster.get(kind), str):
                return _checked(kind, dagster[kind], wd)
    dg = tool.get("dg")
    if isinstance(dg, dict):
        project = dg.get("project", {})
        if isinstance(project, dict):
            module = project.get("code_location_target_module")
            root = project.get("root_module")
            if isinstance(module, str):
                return _checked("module_name", module, wd)
            if isinstance(root, str):
                return _checked("module_name", f"{root}.definitions", wd)
    return None


def _from_workspace(path: Path, wd: str) -> CodeTarget:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise DiscoveryError(f"{path.name}: invalid YAML: {exc}") from exc
    entries = data.get("load_from") if isinstance(data, dict) else None
    if not isinstance(entries, list) or not entries:
        raise DiscoveryError(f"{path.name}: load_from: add at least one python_module entry")
    # Seed 000 lists the synced location first and a `playground` package second;
    # the playground is dagfleet's own location, so skip it here.
    for entry in entries:
        if not isinstance(entry, dict) or len(entry) != 1:
            continue
        ((kind, spec),) = entry.items()
        key = {"python_module": "module_name", "python_package": "package_name"}.get(
            kind, "relative_path"
        )
        if isinstance(spec, str):
            spec = {key: spec}
        if not isinstance(spec, dict) or spec.get("location_name") == "playground":
            continue
        value = spec.get(key)
        attribute = spec.get("attribute") if isinstance(spec.get("attribute"), str) else None
        entry_wd = spec.get("working_directory")
        where = entry_wd if isinstance(entry_wd, str) else wd
        target_kind = {"module_name": "module_name", "package_name": "package_name"}.get(
            key, "python_file"
        )
        if kind in ("python_module", "python_package", "python_file") and isinstance(value, str):
            return _checked(target_kind, value, where, attribute)
    raise DiscoveryError(
        f"{path.name}: load_from: no python_module, python_package or python_file entry"
    )
