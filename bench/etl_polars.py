#!/usr/bin/env python3
"""Reduced ETL job on Polars: CSV.gz -> clean partitioned Parquet (zstd), then funnel + top 20."""
import time

import polars as pl

from _common import emit, parse_args

a = parse_args("polars")

SCHEMA = {
    "event_time": pl.String, "event_type": pl.String, "product_id": pl.Int64,
    "category_id": pl.Int64, "category_code": pl.String, "brand": pl.String,
    "price": pl.Float64, "user_id": pl.Int64, "user_session": pl.String,
}


def fill_unknown(c):
    return pl.when(pl.col(c).is_null() | (pl.col(c) == "")).then(pl.lit("unknown")).otherwise(pl.col(c)).alias(c)


t0 = time.perf_counter()
# read_csv inflates the gzip stream in memory (Polars does not stream compressed CSV).
df = pl.read_csv(a.input, schema=SCHEMA, has_header=True)
ts = pl.col("event_time").str.strptime(pl.Datetime("us", "UTC"), "%Y-%m-%d %H:%M:%S UTC")
out = (
    df.lazy()
    .unique()
    .filter(pl.col("user_session").is_not_null() & (pl.col("user_session") != "") & (pl.col("price") > 0))
    .with_columns(ts.alias("event_time"), fill_unknown("category_code"), fill_unknown("brand"))
    .with_columns(
        pl.col("event_time").dt.hour().cast(pl.Int32).alias("hour_of_day"),
        pl.col("event_time").dt.weekday().cast(pl.Int32).alias("day_of_week"),  # ISO 1=Mon..7=Sun
        pl.col("event_time").dt.date().alias("event_date"),
    )
    .collect()
)
del df
out.write_parquet(a.out, compression="zstd", partition_by="event_date")
del out
stage1 = time.perf_counter() - t0

t1 = time.perf_counter()
lf = pl.scan_parquet(f"{a.out}/**/*.parquet", hive_partitioning=True)
rows_out = lf.select(pl.len()).collect().item()
by_day = (
    lf.group_by("event_date", "event_type").agg(pl.len().alias("n"))
    .sort("event_date", "event_type").collect()
)
top = (
    lf.filter(pl.col("event_type") == "purchase").group_by("product_id").agg(pl.len().alias("purchases"))
    .sort(["purchases", "product_id"], descending=[True, False]).head(20).collect()
)
stage2 = time.perf_counter() - t1

emit("polars", rows_out,
     [(str(d), t, n) for d, t, n in by_day.iter_rows()],
     [(p, n) for p, n in top.iter_rows()], stage1, stage2)
