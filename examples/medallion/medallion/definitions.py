"""The code location: assets, checks, jobs and the IO manager bound to DAGFLEET_STORAGE_ROOT.

Executor: in-process. Measured on 2 cores with 1M rows (bench/medallion.py in
dagfleet), the three steps form a chain, so a multiprocess executor buys no
parallelism and pays a Python start-up per step (dagster + polars imports,
about a second each even with a forkserver preloading this module), while the
data work inside each step is already multi-threaded by Polars.
"""

from __future__ import annotations

from dagster import (
    AssetSelection,
    Definitions,
    EnvVar,
    define_asset_job,
    in_process_executor,
)

from medallion.assets import bronze_asset, gold_asset, silver_asset
from medallion.checks import CHECKS
from medallion.storage import MedallionIOManager

bronze_to_silver_job = define_asset_job(
    "bronze_to_silver_job",
    selection=AssetSelection.assets(bronze_asset, silver_asset),
    description="Read bronze/bronze_data.csv and write silver/silver_data.csv.",
)
silver_to_gold_job = define_asset_job(
    "silver_to_gold_job",
    selection=AssetSelection.assets(gold_asset),
    description="Aggregate silver/silver_data.csv into gold/gold_data.csv.",
)
medallion_job = define_asset_job(
    "medallion_job",
    selection=AssetSelection.assets(bronze_asset, silver_asset, gold_asset),
    description="bronze -> silver -> gold in one run.",
)

defs = Definitions(
    assets=[bronze_asset, silver_asset, gold_asset],
    asset_checks=CHECKS,
    jobs=[bronze_to_silver_job, silver_to_gold_job, medallion_job],
    resources={"io_manager": MedallionIOManager(root=EnvVar("DAGFLEET_STORAGE_ROOT"))},
    executor=in_process_executor,
)
