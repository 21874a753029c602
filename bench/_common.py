"""Shared bits of the benchmark's peer-engine scripts (argument parsing, result line)."""
import argparse
import hashlib
import json
import os
import shutil
import sys

COLUMNS = ["event_time", "event_type", "product_id", "category_id", "category_code",
           "brand", "price", "user_id", "user_session"]
EVENT_TYPES = ["view", "cart", "remove_from_cart", "purchase"]
TS_FORMAT_NOTE = "YYYY-MM-DD HH:MM:SS UTC"


def parse_args(engine):
    p = argparse.ArgumentParser(description=f"shoplake benchmark: reduced ETL job on {engine}")
    p.add_argument("input", help="the export, .csv.gz")
    p.add_argument("out", help="output directory (deleted first)")
    a = p.parse_args()
    if os.path.exists(a.out):
        shutil.rmtree(a.out)
    return a


def funnel_digest(rows):
    """rows: iterable of (event_date 'YYYY-MM-DD', event_type, n). Order-independent digest."""
    lines = sorted(f"{d}|{t}|{int(n)}" for d, t, n in rows)
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()[:16], len({l.split("|")[0] for l in lines})


def emit(engine, rows_out, by_day, top, stage1_s, stage2_s):
    """by_day: list of (event_date str, event_type, count); top: list of (product_id, purchases)."""
    funnel = {t: 0 for t in EVENT_TYPES}
    for _, t, n in by_day:
        funnel[t] = funnel.get(t, 0) + int(n)
    digest, days = funnel_digest(by_day)
    print(json.dumps({
        "engine": engine,
        "rows_out": int(rows_out),
        "funnel": funnel,
        "funnel_days": days,
        "funnel_by_day_sha": digest,
        "top_products": [[int(p), int(n)] for p, n in top],
        "stage1_s": round(stage1_s, 3),
        "stage2_s": round(stage2_s, 3),
    }), flush=True)
    sys.stdout.flush()
