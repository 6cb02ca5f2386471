"""Seed 001's three layers, each logging what it does at every step.

bronze: the raw CSV (seeded from the shipped dummy data when missing), read in place;
silver: bronze plus `total_price = amount * quantity`;
gold: silver aggregated per category.
"""

import shutil
from importlib import resources
from pathlib import Path

import polars as pl
from dagster import AssetExecutionContext, Output, ResourceParam, asset

from medallion import schema
from medallion.storage import MedallionIOManager

DUMMY = "dummy_data/bronze_data.csv"


def seed_bronze(io: MedallionIOManager, context: AssetExecutionContext) -> None:
    """Copy the shipped dummy data to the bronze path if nothing is there yet."""
    if io.exists("bronze"):
        return
    target = io.path_for("bronze")
    context.log.info(f"bronze: {target} is missing; seeding it from the shipped {DUMMY}")
    source = resources.files("medallion").joinpath(DUMMY)
    with resources.as_file(source) as local:
        if io.storage_options() is None:
            Path(target).parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(target + ".tmp")
            shutil.copyfile(local, tmp)
            tmp.replace(target)
        else:
            frame = pl.read_csv(local, schema=schema.BRONZE)
            frame.write_csv(target, storage_options=io.storage_options(), float_precision=2)


@asset(group_name="medallion", io_manager_key="io_manager", compute_kind="polars")
def bronze_asset(
    context: AssetExecutionContext, io_manager: ResourceParam[MedallionIOManager]
) -> Output[None]:
    """Raw orders, `bronze/bronze_data.csv`; read in place, never copied."""
    context.log.info(f"bronze: storage root is {io_manager.root}")
    seed_bronze(io_manager, context)
    context.log.info(f"bronze: profiling {io_manager.path_for('bronze')}")
    stats = io_manager.scan("bronze").select(schema.stats_exprs("bronze")).collect()
    row = stats.row(0, named=True)
    context.log.info(
        f"bronze: {row['row_count']} rows, {row['null_keys']} null ids, "
        f"quantity sum {row['quantity_sum']}"
    )
    return Output(None, metadata={**row, "path": io_manager.path_for("bronze")})


@asset(group_name="medallion", compute_kind="polars")
def silver_asset(context: AssetExecutionContext, bronze_asset: pl.LazyFrame) -> pl.LazyFrame:
    """Bronze plus `total_price`; the IO manager streams it to `silver/silver_data.csv`."""
    context.log.info("silver: adding total_price = amount * quantity (lazy, streamed on write)")
    return bronze_asset.with_columns(
        (pl.col("amount") * pl.col("quantity")).round(2).alias("total_price")
    )


@asset(group_name="medallion", compute_kind="polars")
def gold_asset(context: AssetExecutionContext, silver_asset: pl.LazyFrame) -> pl.DataFrame:
    """Orders, quantity and revenue per category, `gold/gold_data.csv`."""
    context.log.info("gold: aggregating silver per category (streaming group-by)")
    gold = (
        silver_asset.group_by("category")
        .agg(
            pl.len().cast(pl.Int64).alias("order_count"),
            pl.col("quantity").sum().cast(pl.Int64).alias("total_quantity"),
            pl.col("total_price").sum().round(2).alias("total_price"),
        )
        .sort("category")
        .collect(engine="streaming")
    )
    context.log.info(f"gold: {gold.height} categories")
    for row in gold.iter_rows(named=True):
        context.log.info(
            f"gold: {row['category']}: {row['order_count']} orders, "
            f"{row['total_quantity']} items, {row['total_price']:.2f} revenue"
        )
    return gold
