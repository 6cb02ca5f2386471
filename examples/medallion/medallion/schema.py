"""The columns of each layer and the statistics its checks rely on.

Declaring the schema spares Polars its type inference (which also makes CSV
reading about twice as fast on large files).
"""

from __future__ import annotations

import polars as pl

KEY = "id"

BRONZE: dict[str, pl.DataType] = {
    "id": pl.Int64(),
    "customer_id": pl.Int64(),
    "category": pl.String(),
    "amount": pl.Float64(),
    "quantity": pl.Int64(),
    "event_date": pl.String(),
}
SILVER: dict[str, pl.DataType] = {**BRONZE, "total_price": pl.Float64()}
GOLD: dict[str, pl.DataType] = {
    "category": pl.String(),
    "order_count": pl.Int64(),
    "total_quantity": pl.Int64(),
    "total_price": pl.Float64(),
}
SCHEMAS: dict[str, dict[str, pl.DataType]] = {"bronze": BRONZE, "silver": SILVER, "gold": GOLD}


def layer_of(asset_name: str) -> str:
    """`silver_asset` -> `silver`."""
    layer = asset_name.removesuffix("_asset")
    if layer not in SCHEMAS:
        raise KeyError(f"{asset_name}: not a medallion layer (expected one of {sorted(SCHEMAS)})")
    return layer


def stats_exprs(layer: str) -> list[pl.Expr]:
    """Row count, null keys and the sums that must survive from one layer to the next."""
    if layer == "gold":
        return [
            pl.col("order_count").sum().cast(pl.Int64).alias("row_count"),
            pl.col("category").null_count().cast(pl.Int64).alias("null_keys"),
            pl.col("total_quantity").sum().cast(pl.Int64).alias("quantity_sum"),
            pl.col("total_price").sum().alias("total_price_sum"),
            pl.len().cast(pl.Int64).alias("group_count"),
        ]
    exprs = [
        pl.len().cast(pl.Int64).alias("row_count"),
        pl.col(KEY).null_count().cast(pl.Int64).alias("null_keys"),
        pl.col("quantity").sum().cast(pl.Int64).alias("quantity_sum"),
    ]
    if layer == "silver":
        exprs.append(pl.col("total_price").sum().alias("total_price_sum"))
    return exprs
