"""Fixtures shared by every layer: real repos, real fleets, always stopped."""

from __future__ import annotations

import signal
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg2
import pytest

from tests.support.fleetproc import RunningFleet
from tests.support.gitrepo import CodeRepo


def pytest_configure(config: pytest.Config) -> None:
    """Undo an ignored SIGINT/SIGTERM inherited from a backgrounded shell (`make test &`,
    nohup): Dagster's in-process execution copies SIGINT's disposition onto SIGTERM
    when it restores its handlers, and every process a test starts afterwards would
    ignore SIGTERM (seen: Dagster's own `tail -F` log mirror then never exits)."""
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if signal.getsignal(signal.SIGTERM) == signal.SIG_IGN:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


# Each layer's marker comes from its directory, here and nowhere else (a `pytestmark`
# in a conftest.py is ignored). Every e2e scenario is also slow, so `-m "not slow"`
# leaves them all out; the medallion example's own tests are unit tests.
LAYERS = {"unit": ("unit",), "integration": ("integration",), "e2e": ("e2e", "slow")}
ROOT = Path(__file__).resolve().parents[1]


def layer(path: Path) -> str | None:
    """`unit`, `integration` or `e2e` for a test file of the suite, else None."""
    try:
        parts = path.resolve().relative_to(ROOT).parts
    except ValueError:
        return None
    if parts[:1] == ("tests",) and len(parts) > 2 and parts[1] in LAYERS:
        return parts[1]
    if parts[:1] == ("examples",) and "tests" in parts:
        return "unit"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        name = layer(item.path)
        for marker in LAYERS[name] if name else ():
            item.add_marker(marker)


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


def _admin() -> psycopg2.extensions.connection:
    conn = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres")
    conn.autocommit = True
    return conn


@pytest.fixture
def database() -> Iterator[str]:
    """A fresh database on the PostgreSQL at 127.0.0.1:5432, dropped afterwards."""
    name = f"dagfleet_{uuid.uuid4().hex[:10]}"
    conn = _admin()
    with conn.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    conn.close()
    try:
        yield name
    finally:
        conn = _admin()
        with conn.cursor() as cur:
            cur.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (name,),
            )
            cur.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.close()
