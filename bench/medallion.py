"""Benchmark: seed 001's bronze -> silver -> gold at 1M and 10M rows, printed as JSON.

For each size it generates bronze data, then measures in fresh processes:
- `dagster_in_process`: the medallion example's `medallion_job` (all three assets
  and their checks) launched with `execute_job` on a real DagsterInstance
  (dagster.yaml in a temporary DAGSTER_HOME, SQLite storage), in-process
  executor (the example's default);
- `dagster_multiprocess`: the same run with the multiprocess executor using
  the forkserver start method and the medallion module preloaded;
- `pandas`: a plain pandas version of the same steps, the reference.

Wall time covers the whole process (interpreter start and imports included);
`run_s` is the run alone. Peak memory is the peak of the summed RSS of the
process tree, sampled every 10 ms.

Prints one JSON object: `machine` (cpus, python) and `results`, one per size with
rows, bronze_mb, generate_s and per variant wall_s, peak_rss_mib, run_s (dagster
variants also success and checks).

    uv run --frozen python bench/medallion.py [--rows 1000000 10000000] [--skip-pandas]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "medallion"
MIB = 1024 * 1024

try:  # what the multiprocess variant's step processes load (by file, attribute mp_defs)
    sys.path.insert(0, str(EXAMPLE))
    from dagster import Definitions, multiprocess_executor
    from medallion.checks import CHECKS
    from medallion.definitions import (
        bronze_to_silver_job,
        defs,
        medallion_job,
        silver_to_gold_job,
    )

    mp_defs = Definitions(
        assets=[defs.resolve_assets_def(k) for k in ("bronze_asset", "silver_asset", "gold_asset")],
        asset_checks=CHECKS,
        jobs=[bronze_to_silver_job, silver_to_gold_job, medallion_job],
        resources=defs.resources,
        executor=multiprocess_executor.configured(
            {"start_method": {"forkserver": {"preload_modules": ["medallion.definitions"]}}}
        ),
    )
except ImportError:  # pragma: no cover - only the parent may lack the example
    mp_defs = None


def measure(cmd: list[str], env: dict[str, str]) -> dict[str, Any]:
    """Run `cmd`, sampling the RSS of its whole process tree; wall time and peak MiB.

    A failing command raises RuntimeError with the tails of its stdout and stderr.
    """
    # stderr goes to a file, kept for the error: a pipe read at the end could fill up.
    with tempfile.TemporaryFile() as stderr:
        start = time.perf_counter()
        proc = psutil.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=stderr)
        peak = 0
        while proc.poll() is None:
            total = 0
            try:
                procs = [proc, *proc.children(recursive=True)]
            except psutil.NoSuchProcess:
                procs = []
            for p in procs:
                with contextlib.suppress(psutil.NoSuchProcess):
                    total += p.memory_info().rss
            peak = max(peak, total)
            time.sleep(0.01)
        wall = time.perf_counter() - start
        out = proc.stdout.read().decode() if proc.stdout else ""
        stderr.seek(0)
        err = stderr.read().decode(errors="replace")
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd} failed ({proc.returncode}):\n{out[-2000:]}{err[-4000:]}")
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1]) if out.strip() else {}
    return {"wall_s": round(wall, 2), "peak_rss_mib": round(peak / MIB), **result}


def run_errors(result: Any) -> str:
    """A failed run's errors: each failed step's trace, then one line per step naming
    its root cause (last, so that it survives the parent keeping only the tail)."""
    traces, causes = [], []
    for event in result.get_step_failure_events():
        error = event.step_failure_data.error
        if error is None:
            causes.append(f"{event.step_key}: {event.message}")
            continue
        traces.append(error.to_string())
        root = error
        while root.cause is not None:
            root = root.cause
        causes.append(f"{event.step_key}: {root.message.strip()}")
    if not causes:
        for event in result.all_events:
            if event.event_type_value == "PIPELINE_FAILURE":
                causes.append(event.message or "run failed")
    return "\n".join([*traces, *(causes or ["run failed"])])


def dagster_worker(root: str, home: str, variant: str) -> None:
    """Child process: one run of medallion_job on a real instance."""
    os.environ["DAGFLEET_STORAGE_ROOT"] = root
    from dagster import DagsterInstance, execute_job
    from dagster._core.definitions.reconstruct import ReconstructableRepository

    Path(home).mkdir(parents=True, exist_ok=True)
    (Path(home) / "dagster.yaml").write_text(
        f"storage:\n  sqlite:\n    base_dir: {home}/storage\ntelemetry:\n  enabled: false\n"
    )
    if variant == "multiprocess":
        repo = ReconstructableRepository.for_file(__file__, "mp_defs", str(EXAMPLE))
    else:
        repo = ReconstructableRepository.for_module("medallion.definitions", "defs", str(EXAMPLE))
    job = repo.get_reconstructable_job("medallion_job")
    with DagsterInstance.from_config(home) as instance:
        start = time.perf_counter()
        result = execute_job(job, instance=instance)
        run_s = time.perf_counter() - start
        if not result.success:  # a failed run has no timings: exit non-zero with its error
            sys.exit(f"medallion_job failed (run {result.run_id}):\n{run_errors(result)}")
        checks = [e.passed for e in result.get_asset_check_evaluations()]
    print(json.dumps({"run_s": round(run_s, 2), "success": result.success, "checks": checks}))


def pandas_worker(root: str) -> None:
    """Child process: seed 001's steps with pandas, the way the seed describes them."""
    import pandas as pd

    start = time.perf_counter()
    bronze = pd.read_csv(f"{root}/bronze/bronze_data.csv")
    silver = bronze.assign(total_price=(bronze["amount"] * bronze["quantity"]).round(2))
    os.makedirs(f"{root}/silver", exist_ok=True)
    silver.to_csv(f"{root}/silver/silver_data.csv", index=False)
    silver = pd.read_csv(f"{root}/silver/silver_data.csv")
    gold = (
        silver.groupby("category")
        .agg(
            order_count=("id", "size"),
            total_quantity=("quantity", "sum"),
            total_price=("total_price", "sum"),
        )
        .reset_index()
    )
    os.makedirs(f"{root}/gold", exist_ok=True)
    gold.to_csv(f"{root}/gold/gold_data.csv", index=False)
    print(json.dumps({"run_s": round(time.perf_counter() - start, 2)}))


def bench(rows: int, work: Path, skip_pandas: bool) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(EXAMPLE)}
    root = work / str(rows) / "A" / "repos" / "medallion"
    bronze = root / "bronze" / "bronze_data.csv"
    gen = measure(
        [sys.executable, "-m", "medallion.generate", "--rows", str(rows), "--out", str(bronze)],
        env,
    )
    out: dict[str, Any] = {
        "rows": rows,
        "bronze_mb": round(bronze.stat().st_size / 1e6),
        "generate_s": gen["wall_s"],
    }
    for variant in ("in_process", "multiprocess"):
        home = work / str(rows) / f"home-{variant}"
        cmd = [sys.executable, __file__, "--worker", "dagster", str(root), str(home), variant]
        out[f"dagster_{variant}"] = measure(cmd, env)
    if not skip_pandas:
        out["pandas"] = measure([sys.executable, __file__, "--worker", "pandas", str(root)], env)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--rows", type=int, nargs="+", default=[1_000_000, 10_000_000], help="sizes to run"
    )
    parser.add_argument("--skip-pandas", action="store_true", help="leave the pandas reference out")
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        kind, *rest = args.worker
        if kind == "dagster":
            dagster_worker(*rest)
        else:
            pandas_worker(*rest)
        return
    with tempfile.TemporaryDirectory(prefix="dagfleet-bench-") as tmp:
        try:
            results = [bench(n, Path(tmp), args.skip_pandas) for n in args.rows]
        except RuntimeError as exc:  # a failed step or run: its error, no timings
            sys.exit(str(exc))
    machine = {"cpus": os.cpu_count(), "python": sys.version.split()[0]}
    print(json.dumps({"machine": machine, "results": results}, indent=2))


if __name__ == "__main__":
    main()
