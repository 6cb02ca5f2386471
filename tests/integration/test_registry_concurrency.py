"""50 concurrent add/remove calls, in threads and in processes, lose nothing.

The operations commute (distinct names), so the end state must equal running them
one by one; concurrent read-modify-write patches with If-Match keep every update.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml

from dagfleet.registry import PreconditionFailed, Registry
from dagfleet.spec import load_fleet
from dagfleet.spec.defaults import default_fleet_document

pytestmark = pytest.mark.integration
N = 50


def _fleet(root: Path) -> Registry:
    root.mkdir(parents=True, exist_ok=True)
    (root / "fleet.yaml").write_text(yaml.safe_dump(default_fleet_document()))
    (root / "repos").mkdir(exist_ok=True)
    reg = Registry(root)
    for i in range(N // 2, N):  # the half that will be removed
        reg.create(_doc(i))
    return reg


def _doc(i: int) -> dict[str, Any]:
    return {"name": f"repo-{i}", "git_url": f"https://git.example.com/r{i}.git", "branch": "main"}


def _op(args: tuple[str, int]) -> None:
    root, i = args
    reg = Registry(Path(root))
    if i < N // 2:
        reg.create(_doc(i))
    else:
        reg.delete(f"repo-{i}")


def _snapshot(root: Path) -> dict[str, Any]:
    files = sorted((root / "repos").iterdir())
    assert all(not p.name.startswith(".") for p in files), "temp files left behind"
    return {p.name: yaml.safe_load(p.read_text()) for p in files}


@pytest.fixture
def serial(tmp_path: Path) -> dict[str, Any]:
    reg = _fleet(tmp_path / "serial")
    for i in range(N):
        _op((str(reg.root), i))
    return _snapshot(reg.root)


@pytest.mark.parametrize("kind", ["threads", "processes"])
def test_concurrent_add_remove_equals_serial(
    tmp_path: Path, serial: dict[str, Any], kind: str
) -> None:
    reg = _fleet(tmp_path / kind)
    jobs = [(str(reg.root), i) for i in range(N)]
    if kind == "threads":
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(_op, jobs))
    else:
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(8, mp_context=ctx) as pool:
            list(pool.map(_op, jobs))
    assert _snapshot(reg.root) == serial
    assert sorted(load_fleet(reg.root).repos) == sorted(f"repo-{i}" for i in range(N // 2))


def _append_var(args: tuple[str, int]) -> int:
    """Read, modify, write with If-Match; retry on 412 as an API client would."""
    root, i = args
    reg = Registry(Path(root))
    for attempt in range(1000):
        entry = reg.get("shared")
        env = [v.model_dump(exclude_none=True) for v in entry.spec.environment]
        try:
            reg.patch(
                "shared",
                {"environment": [*env, {"name": f"V{i}", "value": str(i)}]},
                if_match=entry.etag,
            )
            return attempt
        except PreconditionFailed:
            continue
    raise AssertionError("never won the race")


@pytest.mark.parametrize("kind", ["threads", "processes"])
def test_if_match_read_modify_write_loses_no_update(tmp_path: Path, kind: str) -> None:
    reg = _fleet(tmp_path / kind)
    reg.create({"name": "shared", "git_url": "/srv/shared.git"})
    jobs = [(str(reg.root), i) for i in range(N)]
    pool_cls: Any = ThreadPoolExecutor if kind == "threads" else ProcessPoolExecutor
    kwargs = {} if kind == "threads" else {"mp_context": multiprocessing.get_context("spawn")}
    with pool_cls(8, **kwargs) as pool:
        list(pool.map(_append_var, jobs))
    names = sorted(v.name for v in reg.get("shared").spec.environment)
    assert names == sorted(f"V{i}" for i in range(N))
