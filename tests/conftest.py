"""Fixtures shared by every layer: real repos, real fleets, always stopped."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.fleetproc import RunningFleet
from tests.support.gitrepo import CodeRepo


@pytest.fixture
def code_repo(tmp_path: Path) -> CodeRepo:
    return CodeRepo(tmp_path / "remotes")


@pytest.fixture
def start_fleet() -> Iterator[Callable[..., RunningFleet]]:
    started: list[RunningFleet] = []

    def start(fleet_dir: Path | None, **kwargs: Any) -> RunningFleet:
        fleet = RunningFleet(fleet_dir, **kwargs).start()
        started.append(fleet)
        return fleet

    yield start
    errors: list[BaseException] = []
    for fleet in reversed(started):
        try:
            fleet.stop()
        except BaseException as exc:  # keep stopping the others, report at the end
            errors.append(exc)
        finally:
            fleet.force_cleanup()
    if errors:
        raise errors[0]
