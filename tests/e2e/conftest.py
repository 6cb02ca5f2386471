"""e2e: each file is one named user scenario against a real `dagfleet up`.

Every test here is marked `e2e` and `slow` by tests/conftest.py (by directory).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.support.fleetproc import write_fleet
from tests.support.gitrepo import TRIVIAL_DEFS, CodeRepo


def demo_fleet(tmp_path: Path, repo: CodeRepo, **repo_fields: Any) -> Path:
    """A fleet with the demo repo in A and B, polling every second."""
    fields = {"git_url": repo.url, "module_name": "demo.definitions", "poll_interval": 1}
    fields.update(repo_fields)
    return write_fleet(tmp_path / "fleet", {"demo": fields})


def with_asset(name: str, extra: str = "") -> str:
    """The demo definitions plus one more asset called `name`."""
    return TRIVIAL_DEFS.replace(
        "defs = Definitions(",
        f"@asset\ndef {name}(three: int) -> int:\n    return three\n\n{extra}\ndefs = Definitions(",
    ).replace("assets=[one, two, three]", f"assets=[one, two, three, {name}]")
