#!/usr/bin/env python3
"""Agreement figures of a day-partitioned Parquet output (DIR/event_date=YYYY-MM-DD/*.parquet),
computed with pyarrow alone, file by file: rows out, the funnel by day and the top 20 products by
purchases. Used for `shoplake convert`'s output, so that its check depends neither on shoplake nor
on the DuckDB engine. Not timed by run.sh.

Also checks that every row's event_time falls on its partition's day. Prints one JSON line in the
peers' format (see _common.result); exits 1 when a file is outside a partition or a row is on the
wrong day.

    check_parquet.py OUT_DIR [--engine NAME] [--report REPORT_JSON]
"""
import argparse
import json
import os
import sys
import time
from collections import Counter

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from _common import parquet_files, result

p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
p.add_argument("out")
p.add_argument("--engine", default="shoplake-convert")
p.add_argument("--report", help="the engine's report JSON (its `seconds` becomes stage1_s)")
a = p.parse_args()

t0 = time.perf_counter()
files = parquet_files(a.out)
if not files:
    sys.exit(f"check_parquet: no Parquet files under {a.out}")
rows = 0
by_day = Counter()   # (day, event_type) -> n
purchases = Counter()  # product_id -> n
for rel in files:
    part = os.path.dirname(rel)
    if not part.startswith("event_date=") or os.sep in part:
        sys.exit(f"check_parquet: {rel} is not in an event_date=YYYY-MM-DD directory")
    day = part[len("event_date="):]
    t = pq.read_table(os.path.join(a.out, rel), columns=["event_time", "event_type", "product_id"])
    rows += t.num_rows
    if t.num_rows == 0:
        continue
    # event_time is UTC; the calendar day of the UTC instant is the partition key
    days = pc.unique(pc.cast(pc.cast(t["event_time"], pa.timestamp("us")), pa.date32()))
    if [str(d) for d in days.to_pylist()] != [day]:
        sys.exit(f"check_parquet: {rel} holds rows of days {sorted(map(str, days.to_pylist()))}, not only {day}")
    for vc in pc.value_counts(t["event_type"]).to_pylist():
        by_day[(day, vc["values"])] += vc["counts"]
    bought = t.filter(pc.equal(t["event_type"], "purchase"))["product_id"]
    for vc in pc.value_counts(bought).to_pylist():
        purchases[vc["values"]] += vc["counts"]
top = sorted(purchases.items(), key=lambda kv: (-kv[1], kv[0]))[:20]
check_s = time.perf_counter() - t0

extra = {"files": len(files), "check_s": round(check_s, 3)}
if a.report:
    with open(a.report) as f:
        rep = json.load(f)
    extra["stage1_s"] = round(float(rep["seconds"]), 3)
print(json.dumps(result(a.engine, rows, [(d, e, n) for (d, e), n in by_day.items()], top, **extra)), flush=True)
