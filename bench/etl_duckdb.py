#!/usr/bin/env python3
"""Reduced ETL job on DuckDB: CSV.gz -> clean partitioned Parquet (zstd), then funnel + top 20."""
import time

import duckdb

from _common import emit, parse_args

a = parse_args("duckdb")
con = duckdb.connect()
con.execute("SET TimeZone = 'UTC'")
con.execute("SET preserve_insertion_order = false")

t0 = time.perf_counter()
con.execute(f"""
COPY (
  WITH src AS (
    SELECT DISTINCT * FROM read_csv(?, header = true, delim = ',', quote = '"',
      columns = {{
        'event_time': 'VARCHAR', 'event_type': 'VARCHAR', 'product_id': 'BIGINT',
        'category_id': 'BIGINT', 'category_code': 'VARCHAR', 'brand': 'VARCHAR',
        'price': 'DOUBLE', 'user_id': 'BIGINT', 'user_session': 'VARCHAR'}})
  ), typed AS (
    SELECT strptime(event_time, '%Y-%m-%d %H:%M:%S UTC')::TIMESTAMP AT TIME ZONE 'UTC' AS event_time,
           event_type, product_id, category_id,
           coalesce(nullif(category_code, ''), 'unknown') AS category_code,
           coalesce(nullif(brand, ''), 'unknown') AS brand,
           price, user_id, user_session
    FROM src
    WHERE user_session IS NOT NULL AND user_session <> '' AND price > 0
  )
  SELECT *, hour(event_time)::INTEGER AS hour_of_day, isodow(event_time)::INTEGER AS day_of_week,
         CAST(event_time AS DATE) AS event_date
  FROM typed
) TO '{a.out}' (FORMAT parquet, COMPRESSION zstd, PARTITION_BY (event_date))
""", [a.input])
stage1 = time.perf_counter() - t0

t1 = time.perf_counter()
src = f"read_parquet('{a.out}/**/*.parquet', hive_partitioning = true)"
rows_out = con.execute(f"SELECT count(*) FROM {src}").fetchone()[0]
by_day = con.execute(f"""
  SELECT CAST(event_date AS VARCHAR), event_type, count(*) FROM {src}
  GROUP BY ALL ORDER BY 1, 2""").fetchall()
top = con.execute(f"""
  SELECT product_id, count(*) AS purchases FROM {src} WHERE event_type = 'purchase'
  GROUP BY product_id ORDER BY purchases DESC, product_id LIMIT 20""").fetchall()
stage2 = time.perf_counter() - t1

emit("duckdb", rows_out, by_day, top, stage1, stage2)
