"""Shell completion of repo, environment and location names, read from the fleet files.

Completion runs on every Tab: it reads file names and fleet.yaml only (no
validation, no API), and never fails; anything unreadable completes nothing.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import typer
import yaml

from dagfleet.cli.discovery import FLEET_FILE, resolve_fleet
from dagfleet.layout import Layout

REPOS_DIR = "repos"


def _fleet(ctx: typer.Context | None) -> Path | None:
    """--fleet as typed so far on the command line (or its parents'), else discovery."""
    given = None
    level: Any = ctx
    with contextlib.suppress(Exception):
        while level is not None and given is None:
            given = level.params.get("fleet")
            level = level.parent
    return resolve_fleet(Path(given) if given else None)


def repo_names(fleet_dir: Path) -> list[str]:
    return sorted(p.stem for p in (fleet_dir / REPOS_DIR).glob("*.y*ml"))


def env_names(fleet_dir: Path) -> list[str]:
    doc: Any = yaml.safe_load((fleet_dir / FLEET_FILE).read_text(encoding="utf-8")) or {}
    envs = doc.get("environments") or [{"name": "A"}, {"name": "B"}]
    return [str(e["name"]) for e in envs if isinstance(e, dict) and e.get("name")]


def location_names(fleet_dir: Path) -> list[str]:
    """Each repo in each environment, the playgrounds, and any location with a status."""
    envs = env_names(fleet_dir)
    names = {f"{repo}-{env}" for repo in repo_names(fleet_dir) for env in envs}
    names |= {f"playground-{env}" for env in envs}
    names |= {p.stem for p in Layout.for_fleet(fleet_dir).status.glob("*.json")}
    return sorted(names)


def _matching(ctx: typer.Context | None, incomplete: str, names: Any) -> list[str]:
    try:
        fleet_dir = _fleet(ctx)
        if fleet_dir is None:
            return []
        return [n for n in names(fleet_dir) if n.startswith(incomplete)]
    except Exception:  # completion must never print a traceback into the shell
        return []


def complete_repo(ctx: typer.Context, incomplete: str) -> list[str]:
    return _matching(ctx, incomplete, repo_names)


def complete_env(ctx: typer.Context, incomplete: str) -> list[str]:
    return _matching(ctx, incomplete, env_names)


def complete_location(ctx: typer.Context, incomplete: str) -> list[str]:
    return _matching(ctx, incomplete, location_names)
