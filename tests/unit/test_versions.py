"""dagfleet and the dagfleet-runtime it installs into every location share one version,
and dagfleet requires exactly that runtime (scripts/bump-version moves all three)."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _project(path: Path) -> dict[str, object]:
    project: dict[str, object] = tomllib.loads(path.read_text())["project"]
    return project


def test_one_version_and_an_exact_runtime_pin() -> None:
    dagfleet = _project(ROOT / "pyproject.toml")
    runtime = _project(ROOT / "packages" / "dagfleet-runtime" / "pyproject.toml")
    assert dagfleet["version"] == runtime["version"]
    deps = dagfleet["dependencies"]
    assert isinstance(deps, list)
    pins = [d for d in deps if d.startswith("dagfleet-runtime")]
    assert pins == [f"dagfleet-runtime=={runtime['version']}"]
