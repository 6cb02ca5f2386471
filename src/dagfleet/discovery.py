"""Find what a checkout's code server loads when the repo file names no target.

Order: `[tool.dagster]` or `[tool.dg]` in pyproject.toml, then a workspace.yaml
at the repository root (seed 000's layout), else a clear error.

A tree with several code locations (a `dg` workspace's projects in dg.toml, a
workspace.yaml with several entries) is a monorepo: `discover_locations` lists
them, `dagfleet repo add` writes them into the repo file's `locations`, and a
repo file without that list gets an error naming them instead of silently
serving the first.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from dagfleet.spec import CodeTarget
from dagfleet.spec.names import check_module_name, check_relative_path


class DiscoveryError(Exception):
    pass


@dataclass(frozen=True)
class FoundLocation:
    """One code location of a monorepo, as its repo file's `locations` entry."""

    name: str
    working_directory: str
    target: CodeTarget | None  # None: discovered in its working directory

    def entry(self) -> dict[str, str]:
        out = {"name": self.name}
        if self.working_directory != ".":
            out["working_directory"] = self.working_directory
        if self.target is not None:
            out[self.target.kind] = self.target.value
            if self.target.attribute:
                out["attribute"] = self.target.attribute
        return out


def location_slug(text: str) -> str:
    """A location name from a path or module (`projects/Sales_DG` -> `sales-dg`)."""
    slug = re.sub(r"[^a-z0-9]+", "-", text.rsplit("/", 1)[-1].lower()).strip("-")
    if not slug or not slug[0].isalpha():
        slug = f"loc-{slug}".strip("-")
    return slug[:20].rstrip("-")


def discover_locations(checkout: Path) -> list[FoundLocation]:
    """The code locations of a monorepo at the tree's root; [] for a single one."""
    found = _dg_workspace(checkout)
    if not found:
        for name in ("workspace.yaml", "workspace.yml"):
            if (checkout / name).is_file():
                found = _workspace_entries(checkout / name, ".")
                break
    if len(found) < 2:
        return []
    names = [f.name for f in found]
    if len(set(names)) != len(names):  # e.g. two `definitions.py` files: number them
        found = [
            FoundLocation(f"{f.name}-{i}", f.working_directory, f.target)
            for i, f in enumerate(found, 1)
        ]
    return found


def _dg_workspace(checkout: Path) -> list[FoundLocation]:
    path = checkout / "dg.toml"
    if not path.is_file():
        return []
    try:
        data = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise DiscoveryError(f"dg.toml: invalid TOML: {exc}") from exc
    projects = data.get("workspace", {}).get("projects", [])
    out = []
    for project in projects if isinstance(projects, list) else []:
        where = project.get("path") if isinstance(project, dict) else None
        if isinstance(where, str) and check_relative_path(where) is None:
            out.append(FoundLocation(location_slug(where), where.strip("/") or ".", None))
    return out


def discover_target(checkout: Path, working_directory: str = ".") -> CodeTarget:
    project = checkout / working_directory
    if working_directory == ".":
        several = discover_locations(checkout)
        if several:
            listed = ", ".join(f.name for f in several)
            raise DiscoveryError(
                f"the repository holds {len(several)} code locations ({listed}): list them "
                "under `locations:` in its repo file (`dagfleet repo add` writes them), or "
                "name one with working_directory/module_name"
            )
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
    found = _workspace_entries(path, wd)
    if not found or found[0].target is None:
        raise DiscoveryError(
            f"{path.name}: load_from: no python_module, python_package or python_file entry"
        )
    return found[0].target


def _workspace_entries(path: Path, wd: str) -> list[FoundLocation]:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise DiscoveryError(f"{path.name}: invalid YAML: {exc}") from exc
    entries = data.get("load_from") if isinstance(data, dict) else None
    if not isinstance(entries, list) or not entries:
        raise DiscoveryError(f"{path.name}: load_from: add at least one python_module entry")
    out: list[FoundLocation] = []
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
            target = _checked(target_kind, value, where, attribute)
            named = spec.get("location_name")
            label = named if isinstance(named, str) else value.removesuffix(".py")
            for tail in (".definitions", "/definitions", ".defs", "/defs"):
                label = label.removesuffix(tail)
            if label in ("definitions", "defs", "repository") and where != ".":
                label = where
            out.append(FoundLocation(location_slug(label.replace(".", "/")), where, target))
    return out
