#!/usr/bin/env python3
"""The BI reports and the dashboard on a built lake, against DuckDB asking the same questions
of the fact table's Parquet files (the files the Delta log lists now), in the same run.

    reports.py LAKE_DIR [--rounds 5] [--from 2020-04-08 --to 2020-04-14] [--bin SHOPLAKE]

For every report: `shoplake report NAME -f json` as a process (start-up included), over the
whole lake and over the range; DuckDB's answer to the same question from the fact, timed
inside this process (connection made and files listed beforehand). Then the dashboard:
`shoplake serve` on a free loopback port, the page and the API calls it makes, timed one after
another (an upper bound) and as the browser makes them (the API calls at once, as the page's
Promise.all). Prints a Markdown table of medians.
"""
import argparse
import concurrent.futures
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request

import duckdb

from _common import delta_active_files

p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
p.add_argument("lake")
p.add_argument("--rounds", type=int, default=5)
p.add_argument("--from", dest="start", default="2020-04-08")
p.add_argument("--to", dest="end", default="2020-04-14")
p.add_argument("--bin", default=os.environ.get("SHOPLAKE_BIN", os.path.expanduser(
    "~/.cache/shoplake/target/release/shoplake")))
a = p.parse_args()

fact_dir = os.path.join(a.lake, "model", "fact_user_events")
files = [os.path.join(fact_dir, f) for f in delta_active_files(fact_dir)]
con = duckdb.connect()
con.execute("SET TimeZone = 'UTC'")
con.execute(f"CREATE VIEW fact AS SELECT * FROM read_parquet({files!r}, hive_partitioning = true)")


def where(rng):
    return f"WHERE event_date BETWEEN DATE '{a.start}' AND DATE '{a.end}'" if rng else ""


# The question of each report, asked of the fact table.
def duckdb_questions(rng):
    w = where(rng)
    sessions = f"""SELECT session_id, min(event_time) AS s, max(event_time) AS e, count(*) AS n,
        max(CASE WHEN event_type = 'purchase' THEN 1 ELSE 0 END) AS p FROM fact {w} GROUP BY session_id"""
    return {
        "summary": f"""SELECT count(*), sum(CASE WHEN event_type = 'purchase' THEN price ELSE 0 END),
            count(DISTINCT user_id), count(DISTINCT session_id) FROM fact {w}""",
        "funnel": f"""SELECT event_date, event_type, count(*), count(DISTINCT user_id),
            count(DISTINCT session_id) FROM fact {w} GROUP BY 1, 2""",
        "products": f"""SELECT product_id, sum(CASE WHEN event_type = 'view' THEN 1 ELSE 0 END) AS v,
            sum(CASE WHEN event_type = 'cart' THEN 1 ELSE 0 END),
            sum(CASE WHEN event_type = 'purchase' THEN 1 ELSE 0 END) FROM fact {w}
            GROUP BY 1 ORDER BY v DESC LIMIT 20""",
        "sessions": f"""SELECT count(*), avg(epoch(e) - epoch(s)), median(epoch(e) - epoch(s)),
            avg(n), median(n) FROM ({sessions})""",
        "categories": f"""SELECT category_code, sum(CASE WHEN event_type = 'purchase' THEN price ELSE 0 END) AS r,
            sum(CASE WHEN event_type = 'purchase' THEN 1 ELSE 0 END),
            sum(CASE WHEN event_type = 'view' THEN 1 ELSE 0 END) FROM fact {w}
            GROUP BY 1 ORDER BY r DESC LIMIT 20""",
        "brands": f"""SELECT brand, sum(CASE WHEN event_type = 'purchase' THEN price ELSE 0 END) AS r,
            sum(CASE WHEN event_type = 'purchase' THEN 1 ELSE 0 END),
            sum(CASE WHEN event_type = 'view' THEN 1 ELSE 0 END) FROM fact {w}
            GROUP BY 1 ORDER BY r DESC LIMIT 20""",
        "trends": f"""SELECT hour_of_day, event_type, count(*) FROM fact {w} GROUP BY 1, 2""",
        "prices": f"""SELECT category_code, avg(price), median(price), min(price), max(price)
            FROM fact {w} GROUP BY 1""",
        "users": f"""SELECT count(*), count(*) FILTER (WHERE days >= 2), count(*) FILTER (WHERE pdays >= 2)
            FROM (SELECT user_id, count(DISTINCT event_date) AS days,
                  count(DISTINCT CASE WHEN event_type = 'purchase' THEN event_date END) AS pdays
                  FROM fact {w} GROUP BY user_id)""",
    }


def shoplake(name, rng):
    args = [a.bin, "--lake", a.lake, "report", name, "-f", "json"]
    if rng:
        args += ["--from", a.start, "--to", a.end]
    t0 = time.perf_counter()
    out = subprocess.run(args, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if out.returncode != 0:
        sys.exit(f"reports.py: {' '.join(args)} failed: {out.stderr}")
    json.loads(out.stdout)
    return seconds


def median(f, rounds):
    return statistics.median(f() for _ in range(rounds))


def timed_duckdb(sql):
    t0 = time.perf_counter()
    con.execute(sql).fetchall()
    return time.perf_counter() - t0


rows = []
names = ["summary", "funnel", "products", "sessions", "categories", "brands", "trends", "prices", "users"]
for name in names:
    row = [name]
    for rng in (False, True):
        ours = median(lambda: shoplake(name, rng), a.rounds)
        theirs = median(lambda: timed_duckdb(duckdb_questions(rng)[name]), a.rounds)
        row += [ours, theirs]
    rows.append(row)

# The dashboard: the page, its assets and the API calls it makes.
with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
server = subprocess.Popen([a.bin, "--lake", a.lake, "serve", "--listen", f"127.0.0.1:{port}"],
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
try:
    server.stdout.readline()
    base = f"http://127.0.0.1:{port}"
    calls = ["/", "/assets/dashboard.js", "/assets/echarts.min.js"] + [
        f"/api/reports/{r}{q}" for r, q in [("summary", ""), ("funnel", ""), ("trends", ""),
                                            ("products", "?limit=10"), ("categories", "?limit=10"),
                                            ("brands", "?limit=10"), ("sessions", ""), ("prices", "?limit=10")]]

    def page(query):
        slowest = 0.0
        t0 = time.perf_counter()
        for c in calls:
            url = base + c + ((("&" if "?" in c else "?") + query) if query and c.startswith("/api") else "")
            t1 = time.perf_counter()
            with urllib.request.urlopen(url) as r:
                r.read()
            slowest = max(slowest, time.perf_counter() - t1)
        return time.perf_counter() - t0, slowest

    def fetch(url):
        with urllib.request.urlopen(url) as r:
            r.read()

    def page_at_once(query):
        """As the browser loads it: the page and its script, then the API calls all at once
        (the page's Promise.all), on as many connections."""
        t0 = time.perf_counter()
        for c in calls[:3]:
            fetch(base + c)
        api = [base + c + ((("&" if "?" in c else "?") + query) if query else "") for c in calls[3:]]
        with concurrent.futures.ThreadPoolExecutor(len(api)) as pool:
            list(pool.map(fetch, api))
        return time.perf_counter() - t0

    whole = [page("") for _ in range(a.rounds)]
    ranged = [page(f"from={a.start}&to={a.end}") for _ in range(a.rounds)]
    whole_at_once = [page_at_once("") for _ in range(a.rounds)]
    ranged_at_once = [page_at_once(f"from={a.start}&to={a.end}") for _ in range(a.rounds)]
finally:
    server.terminate()
    server.wait()

print(f"| report | shoplake report, whole lake (s) | DuckDB over the fact, whole (s) | shoplake, {a.start} to {a.end} (s) | DuckDB, range (s) | shoplake / DuckDB (whole) |")
print("|---|---:|---:|---:|---:|---:|")
for name, ours, theirs, ours_r, theirs_r in rows:
    print(f"| {name} | {ours:.3f} | {theirs:.3f} | {ours_r:.3f} | {theirs_r:.3f} | {ours / theirs:.2f} |")
for label, runs, at_once in (("whole lake", whole, whole_at_once),
                             (f"{a.start} to {a.end}", ranged, ranged_at_once)):
    total = statistics.median(r[0] for r in runs)
    slowest = statistics.median(r[1] for r in runs)
    print(f"\ndashboard, {label}: page + {len(calls) - 1} requests one after another {total:.3f} s "
          f"(median of {a.rounds}); slowest request {slowest:.3f} s; "
          f"as the browser loads it (the API calls at once) {statistics.median(at_once):.3f} s")
