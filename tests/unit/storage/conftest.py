"""Fleets built in memory for the storage tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from dagfleet.spec import Fleet, FleetSpec, StorageSpec


@pytest.fixture
def make_fleet(tmp_path: Path) -> Callable[..., Fleet]:
    def make(
        root: str = "data", endpoint_url: str | None = None, envs: tuple[str, ...] = ("A", "B")
    ) -> Fleet:
        spec = FleetSpec(
            storage=StorageSpec(root=root, endpoint_url=endpoint_url),
            environments=[{"name": e} for e in envs],  # type: ignore[misc]
        )
        return Fleet(root=str(tmp_path / "fleet"), spec=spec)

    return make
