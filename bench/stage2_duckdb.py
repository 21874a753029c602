#!/usr/bin/env python3
"""Stage 2 on DuckDB over a Delta table's own Parquet files (shoplake's model.fact_user_events,
hive-partitioned by event_date): the same two queries as run.sh's `shoplake query` steps, each
timed inside this process (connection set up and files listed beforehand, untimed).

Before querying, checks that the data files on disk (TABLE_DIR/event_date=*/*.parquet; the
log's checkpoints are Parquet too, under _delta_log/) are exactly the table's current file set
(replayed from _delta_log), so that the glob reads neither stale files nor misses any.
Prints one JSON line: the agreement figures (see _common.result) plus funnel_s and top_s.

    stage2_duckdb.py TABLE_DIR
"""
import json
import os
import sys
import time

import duckdb

from _common import delta_active_files, parquet_files, result

if len(sys.argv) != 2:
    sys.exit(__doc__)
table = sys.argv[1].rstrip("/")

on_disk = [f for f in parquet_files(table) if not f.startswith("_delta_log" + os.sep)]
active = delta_active_files(table)
if on_disk != active:
    extra = sorted(set(on_disk) - set(active))
    missing = sorted(set(active) - set(on_disk))
    sys.exit(f"stage2_duckdb: {table}/event_date=*/*.parquet is not the table's current file set: "
             f"{len(extra)} file(s) not in the Delta log (e.g. {extra[:2]}), "
             f"{len(missing)} active file(s) missing (e.g. {missing[:2]})")

con = duckdb.connect()
con.execute("SET TimeZone = 'UTC'")
src = f"read_parquet('{table}/event_date=*/*.parquet', hive_partitioning = true)"
# Grouped by the date itself, formatted after grouping (30 x 4 values, not one per row).
FUNNEL = (f"SELECT CAST(event_date AS VARCHAR) AS d, event_type, n FROM (SELECT event_date, "
          f"event_type, count(*) AS n FROM {src} GROUP BY event_date, event_type) ORDER BY 1, 2")
TOP = (f"SELECT product_id, count(*) AS purchases FROM {src} WHERE event_type = 'purchase' "
       "GROUP BY product_id ORDER BY purchases DESC, product_id LIMIT 20")

t0 = time.perf_counter()
by_day = con.execute(FUNNEL).fetchall()
funnel_s = time.perf_counter() - t0
t1 = time.perf_counter()
top = con.execute(TOP).fetchall()
top_s = time.perf_counter() - t1

rows = con.execute(f"SELECT count(*) FROM {src}").fetchone()[0]  # untimed
print(json.dumps(result("duckdb-over-fact", rows, by_day, top, files=len(on_disk),
                        funnel_s=round(funnel_s, 4), top_s=round(top_s, 4))), flush=True)
