"""Asset checks on every layer.

The statistics are computed while each layer is written (same streaming pass)
and stored as materialization metadata, so a check reads a few numbers from
the instance instead of scanning the data again.
"""

import math
from typing import Any

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetKey,
    asset_check,
)

from medallion.assets import bronze_asset, gold_asset, silver_asset


def latest_stats(context: AssetCheckExecutionContext, asset: str) -> dict[str, Any]:
    event = context.instance.get_latest_materialization_event(AssetKey(asset))
    mat = event.asset_materialization if event else None
    if mat is None:
        return {}
    return {k: v.value for k, v in mat.metadata.items()}


def _missing(asset: str) -> AssetCheckResult:
    return AssetCheckResult(
        passed=False,
        severity=AssetCheckSeverity.ERROR,
        description=f"{asset} has no materialization with statistics: materialize it first",
    )


@asset_check(asset=bronze_asset, description="bronze has rows")
def bronze_row_count(context: AssetCheckExecutionContext) -> AssetCheckResult:
    stats = latest_stats(context, "bronze_asset")
    if not stats:
        return _missing("bronze_asset")
    rows = int(stats["row_count"])
    context.log.info(f"check bronze_row_count: {rows} rows")
    return AssetCheckResult(passed=rows > 0, metadata={"row_count": rows})


@asset_check(asset=bronze_asset, description="no bronze row lacks its id")
def bronze_ids_not_null(context: AssetCheckExecutionContext) -> AssetCheckResult:
    stats = latest_stats(context, "bronze_asset")
    if not stats:
        return _missing("bronze_asset")
    nulls = int(stats["null_keys"])
    context.log.info(f"check bronze_ids_not_null: {nulls} null ids")
    return AssetCheckResult(passed=nulls == 0, metadata={"null_keys": nulls})


@asset_check(asset=silver_asset, description="silver keeps every bronze row")
def silver_row_count(context: AssetCheckExecutionContext) -> AssetCheckResult:
    silver, bronze = latest_stats(context, "silver_asset"), latest_stats(context, "bronze_asset")
    if not silver or not bronze:
        return _missing("silver_asset" if not silver else "bronze_asset")
    s, b = int(silver["row_count"]), int(bronze["row_count"])
    context.log.info(f"check silver_row_count: silver {s} rows, bronze {b} rows")
    return AssetCheckResult(passed=s == b and s > 0, metadata={"silver": s, "bronze": b})


@asset_check(asset=silver_asset, description="no silver row lacks its id")
def silver_ids_not_null(context: AssetCheckExecutionContext) -> AssetCheckResult:
    stats = latest_stats(context, "silver_asset")
    if not stats:
        return _missing("silver_asset")
    nulls = int(stats["null_keys"])
    context.log.info(f"check silver_ids_not_null: {nulls} null ids")
    return AssetCheckResult(passed=nulls == 0, metadata={"null_keys": nulls})


@asset_check(asset=gold_asset, description="gold accounts for every silver row, item and cent")
def gold_totals_preserved(context: AssetCheckExecutionContext) -> AssetCheckResult:
    gold, silver = latest_stats(context, "gold_asset"), latest_stats(context, "silver_asset")
    if not gold or not silver:
        return _missing("gold_asset" if not gold else "silver_asset")
    rows_ok = int(gold["row_count"]) == int(silver["row_count"])
    qty_ok = int(gold["quantity_sum"]) == int(silver["quantity_sum"])
    # Gold rounds each category's revenue to the cent: allow half a cent per group.
    slack = 0.005 * int(gold["group_count"]) + 1e-9 * abs(float(silver["total_price_sum"]))
    price_ok = math.isclose(
        float(gold["total_price_sum"]), float(silver["total_price_sum"]), abs_tol=slack
    )
    context.log.info(
        f"check gold_totals_preserved: rows {gold['row_count']}/{silver['row_count']}, "
        f"quantity {gold['quantity_sum']}/{silver['quantity_sum']}, "
        f"revenue {gold['total_price_sum']:.2f}/{silver['total_price_sum']:.2f}"
    )
    return AssetCheckResult(
        passed=rows_ok and qty_ok and price_ok,
        metadata={
            "rows_preserved": rows_ok,
            "quantity_preserved": qty_ok,
            "revenue_preserved": price_ok,
        },
    )


@asset_check(asset=gold_asset, description="every gold row has a category")
def gold_keys_not_null(context: AssetCheckExecutionContext) -> AssetCheckResult:
    stats = latest_stats(context, "gold_asset")
    if not stats:
        return _missing("gold_asset")
    nulls = int(stats["null_keys"])
    context.log.info(f"check gold_keys_not_null: {nulls} null categories")
    return AssetCheckResult(passed=nulls == 0, metadata={"null_keys": nulls})


CHECKS = [
    bronze_row_count,
    bronze_ids_not_null,
    silver_row_count,
    silver_ids_not_null,
    gold_totals_preserved,
    gold_keys_not_null,
]
