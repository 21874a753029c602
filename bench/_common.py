"""Shared bits of the benchmark's scripts (argument parsing, result line, Parquet file lists)."""
import argparse
import glob
import hashlib
import json
import os
import shutil
import sys
from urllib.parse import unquote

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


def result(engine, rows_out, by_day, top, **extra):
    """The agreement figures as a dict. by_day: list of (event_date str, event_type, count);
    top: list of (product_id, purchases)."""
    by_day = list(by_day)
    funnel = {t: 0 for t in EVENT_TYPES}
    for _, t, n in by_day:
        funnel[t] = funnel.get(t, 0) + int(n)
    digest, days = funnel_digest(by_day)
    out = {
        "engine": engine,
        "rows_out": int(rows_out),
        "funnel": funnel,
        "funnel_days": days,
        "funnel_by_day_sha": digest,
        "top_products": [[int(p), int(n)] for p, n in top],
    }
    out.update(extra)
    return out


def emit(engine, rows_out, by_day, top, stage1_s, stage2_s):
    """Prints the result line of a peer engine's reduced job."""
    print(json.dumps(result(engine, rows_out, by_day, top,
                            stage1_s=round(stage1_s, 3), stage2_s=round(stage2_s, 3))), flush=True)
    sys.stdout.flush()


def parquet_files(root):
    """Every *.parquet file under root (recursively), as sorted paths relative to root."""
    return sorted(os.path.relpath(p, root) for p in glob.glob(os.path.join(root, "**", "*.parquet"), recursive=True))


def delta_active_files(table_dir):
    """The data files of a Delta table's current version, replayed from its JSON commits
    (add minus remove, in version order). Raises ValueError when the log does not start at
    version 0 (older commits cleaned up: a checkpoint would be needed, not read here)."""
    log = os.path.join(table_dir, "_delta_log")
    commits = sorted(glob.glob(os.path.join(log, "[0-9]" * 20 + ".json")))
    if not commits or not commits[0].endswith("0" * 20 + ".json"):
        raise ValueError(f"{log}: no commit 0 (log cleaned up?); cannot list the active files")
    active = set()
    for c in commits:
        with open(c) as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                action = json.loads(line)
                if "add" in action:
                    active.add(os.path.normpath(unquote(action["add"]["path"])))
                elif "remove" in action:
                    active.discard(os.path.normpath(unquote(action["remove"]["path"])))
    return sorted(active)
