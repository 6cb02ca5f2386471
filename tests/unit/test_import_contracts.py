"""The import contracts in pyproject.toml hold: layers top to bottom, no cycles,
the CLI never imports the API, renders never import the local runtime."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def test_every_import_contract_is_kept() -> None:
    result = subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 kept, 0 broken" in result.stdout


def test_a_broken_layer_is_caught(tmp_path: Path) -> None:
    """The linter really reads our contracts: a module importing upwards breaks them."""
    package = tmp_path / "dagfleet"
    for module in ("", "spec", "cli"):
        (package / module).mkdir(parents=True, exist_ok=True)
        (package / module / "__init__.py").write_text("")
    (package / "spec" / "__init__.py").write_text("import dagfleet.cli\n")
    config = tmp_path / ".importlinter"
    config.write_text(
        "[importlinter]\nroot_package = dagfleet\n\n"
        "[importlinter:contract:layers]\nname = layers\ntype = layers\n"
        "layers =\n    dagfleet.cli\n    dagfleet.spec\n"
    )
    result = subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--config", str(config)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "dagfleet.spec -> dagfleet.cli" in result.stdout


@pytest.fixture(autouse=True)
def _has_linter() -> None:
    assert LINT_IMPORTS.exists(), "import-linter is a dev dependency: run `uv sync`"
