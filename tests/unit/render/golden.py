"""Golden files: tests/golden/<target>/<fleet>/<path>; DAGFLEET_UPDATE_GOLDEN=1 rewrites them."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

GOLDEN = Path(__file__).resolve().parents[2] / "golden"


def updating() -> bool:
    return os.environ.get("DAGFLEET_UPDATE_GOLDEN") == "1"


def check(target: str, fleet: str, files: dict[str, str]) -> list[str]:
    """Compare (or with DAGFLEET_UPDATE_GOLDEN=1 rewrite) one target's files; returns problems."""
    root = GOLDEN / target / fleet
    if updating():
        shutil.rmtree(root, ignore_errors=True)
        for rel, text in files.items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_text(text, encoding="utf-8")
        return []
    problems = []
    on_disk = {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}
    for rel in sorted(on_disk - set(files)):
        problems.append(f"{rel}: no longer rendered")
    for rel, text in sorted(files.items()):
        path = root / rel
        if not path.exists():
            problems.append(f"{rel}: missing golden file")
        elif path.read_text(encoding="utf-8") != text:
            problems.append(f"{rel}: differs from {path}")
    return problems
