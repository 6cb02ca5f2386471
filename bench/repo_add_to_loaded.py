"""Repo-add-to-loaded: for each common project shape (tests/support/shapes.py), the time
from `dagfleet repo add NAME --git-url URL` to the location NAME-A loaded in the webserver.

Per shape, two fresh fleets (environment A only, no daemon) share one fresh uv cache:
- cold: the cache directory is empty (UV_CACHE_DIR passed to `dagfleet up`), so
  every wheel, build backend and sdist is fetched from the index;
- warm: a second fleet with no environments yet, on the cache the cold run filled.
The repo is made before the clock starts (create-dagster and `uv lock` use the
default cache).

Prints one JSON object: cpus; shapes, per shape and mode seconds, cli_seconds
(when `repo add` returned) and cli_exit, plus uv_cache_mib per shape (`seconds`
is null when the location did not load, with the dagfleet reason and message
instead); summary, per mode loaded, of and max_seconds; total_seconds.

    uv run --frozen python bench/repo_add_to_loaded.py [--shapes uv_lock] [--modes cold]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from _fleet import RunningFleet, wait_for, write_fleet

from tests.support.fleetproc import DAGFLEET
from tests.support.shapes import SHAPES, ShapeRepo

MODES = ("cold", "warm")


def dir_mib(path: Path) -> float:
    total = 0
    for root, _dirs, files in os.walk(path):
        for f in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, f)).st_size
    return round(total / 2**20, 1)


def add_and_time(base: Path, repo: ShapeRepo, cache: Path, timeout: float) -> dict[str, Any]:
    """Start a fleet on `cache`, then time `repo add` until NAME-A is loaded."""
    fleet_dir = write_fleet(base / "fleet", {}, environments=[{"name": "A", "branch": "A"}])
    fleet = RunningFleet(fleet_dir, extra=["--no-daemon"], env={"UV_CACHE_DIR": str(cache)})
    fleet.start()
    location = repo.location
    try:

        def up() -> bool:
            assert fleet.proc is not None and fleet.proc.poll() is None, fleet.log()[-2000:]
            return fleet.gql.locations() is not None

        wait_for(up, 300, "the webserver")
        cli: dict[str, Any] = {}

        def add() -> None:
            done = subprocess.run(
                [
                    DAGFLEET,
                    "repo",
                    "add",
                    repo.name,
                    "--git-url",
                    repo.url,
                    "--timeout",
                    str(timeout),
                    "--fleet",
                    str(fleet_dir),
                    "--api",
                    fleet.api.removesuffix("/api/v1"),
                ],
                capture_output=True,
                text=True,
                check=False,
                timeout=timeout + 60,
            )
            cli.update(code=done.returncode, stderr=done.stderr, at=time.monotonic())

        start = time.monotonic()
        adder = threading.Thread(target=add)
        adder.start()
        loaded_at = None
        while adder.is_alive() or loaded_at is None:
            with contextlib.suppress(Exception):  # the webserver may be reloading
                if location in fleet.gql.loaded_locations():
                    loaded_at = time.monotonic()
                    break
            if not adder.is_alive():  # the CLI gave up: one last look
                if location in fleet.gql.loaded_locations():
                    loaded_at = time.monotonic()
                break
            time.sleep(0.1)
        adder.join()
        out: dict[str, Any] = {
            "seconds": round(loaded_at - start, 2) if loaded_at else None,
            "cli_seconds": round(cli["at"] - start, 2),
            "cli_exit": cli["code"],
        }
        if loaded_at is None:
            synced = fleet.condition(location, "Synced")
            out["reason"] = synced.get("reason")
            out["message"] = (synced.get("message") or cli["stderr"])[-600:]
        return out
    finally:
        try:
            fleet.stop()
        finally:
            fleet.force_cleanup()


def measure(shape: str, modes: list[str], timeout: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix=f"dagfleet-bench-shape-{shape}-") as tmp:
        base = Path(tmp)
        made = time.monotonic()
        repo = ShapeRepo(base / "remotes", shape)
        out: dict[str, Any] = {"make_repo_seconds": round(time.monotonic() - made, 2)}
        cache = base / "uv-cache"
        cache.mkdir()
        if modes == ["warm"]:  # warm alone: fill the cache first, untimed
            add_and_time(base / "fill", repo, cache, timeout)
        for mode in modes:
            try:
                out[mode] = add_and_time(base / mode, repo, cache, timeout)
            except Exception as exc:  # one fleet that did not start: report it, go on
                out[mode] = {"seconds": None, "error": str(exc)[-1500:]}
            print(f"{shape} {mode}: {out[mode]}", file=sys.stderr, flush=True)
        out["uv_cache_mib"] = dir_mib(cache)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--shapes",
        default=",".join(SHAPES),
        help=f"comma-separated shapes (default: all): {', '.join(SHAPES)}",
    )
    parser.add_argument(
        "--modes", default=",".join(MODES), help="comma-separated: cold, warm (default: both)"
    )
    parser.add_argument(
        "--timeout", type=float, default=600.0, help="seconds to wait for one location"
    )
    args = parser.parse_args()
    shapes = [s.strip() for s in args.shapes.split(",") if s.strip()]
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = [s for s in shapes if s not in SHAPES] + [m for m in modes if m not in MODES]
    if unknown:
        parser.error(f"unknown: {', '.join(unknown)}")
    started = time.monotonic()
    results = {shape: measure(shape, modes, args.timeout) for shape in shapes}
    summary = {
        mode: {
            "loaded": sum(1 for r in results.values() if r[mode]["seconds"] is not None),
            "of": len(results),
            "max_seconds": max(
                (r[mode]["seconds"] for r in results.values() if r[mode]["seconds"] is not None),
                default=None,
            ),
        }
        for mode in modes
    }
    print(
        json.dumps(
            {
                "cpus": os.cpu_count(),
                "shapes": results,
                "summary": summary,
                "total_seconds": round(time.monotonic() - started, 1),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
