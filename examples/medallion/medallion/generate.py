"""Generate N rows of bronze data: `python -m medallion.generate --rows N --out PATH`.

Rows are built in chunks with Polars expressions (no Python loop per row) and
appended to the CSV, so memory stays flat whatever N is. Values are a pure
function of the row id, so the same N always gives the same file.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import polars as pl

CATEGORIES = ["books", "electronics", "garden", "grocery", "sports", "toys", "clothing", "home"]
CHUNK_ROWS = 1_000_000


def chunk(start: int, stop: int) -> pl.DataFrame:
    """Rows with ids in [start, stop): the bronze schema of seed 001."""
    ids = pl.int_range(start, stop, dtype=pl.Int64, eager=True).alias("id")
    h = ids.hash(seed=42)
    frame = pl.DataFrame({"id": ids, "h": h})
    return frame.select(
        pl.col("id"),
        (pl.col("h") % 100_000).cast(pl.Int64).alias("customer_id"),
        pl.lit(pl.Series(CATEGORIES), dtype=pl.Categorical)
        .get((pl.col("h") // 7 % len(CATEGORIES)).cast(pl.Int64))
        .cast(pl.String)
        .alias("category"),
        ((pl.col("h") // 131 % 1_000_000).cast(pl.Float64) / 100).alias("amount"),
        (pl.col("h") // 17 % 10 + 1).cast(pl.Int64).alias("quantity"),
        (pl.date(2024, 1, 1) + pl.duration(days=(pl.col("h") // 13 % 366).cast(pl.Int64))).alias(
            "event_date"
        ),
    )


def generate(rows: int, out: Path, chunk_rows: int = CHUNK_ROWS) -> Path:
    """Write `rows` bronze rows to `out` (CSV, or Parquet when it ends in .parquet)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    if out.suffix == ".parquet":
        frames = (chunk(s, min(s + chunk_rows, rows)) for s in range(0, rows, chunk_rows))
        pl.concat([f.lazy() for f in frames]).sink_parquet(tmp)
    else:
        with tmp.open("wb") as fh:
            for start in range(0, max(rows, 1), chunk_rows):
                part = chunk(start, min(start + chunk_rows, rows))
                part.write_csv(fh, include_header=start == 0, float_precision=2)
    tmp.replace(out)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, required=True, help="number of rows to write")
    parser.add_argument("--out", type=Path, required=True, help="CSV (or .parquet) file to write")
    parser.add_argument("--chunk-rows", type=int, default=CHUNK_ROWS)
    args = parser.parse_args(argv)
    if args.rows < 0:
        parser.error("--rows must be >= 0")
    generate(args.rows, args.out, args.chunk_rows)
    print(f"wrote {args.rows} rows to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
