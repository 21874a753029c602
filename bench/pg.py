#!/usr/bin/env python3
"""The PostgreSQL endpoint on a built lake: the same statements through psycopg and through
`shoplake query`, then many clients at once.

    pg.py LAKE_DIR [--rounds 5] [--clients 20] [--seconds 60] [--bin SHOPLAKE]

Part 1, the protocol's own cost: each statement as `shoplake query -q -f csv SQL` (a process:
start-up, the lake's catalog, the query, the CSV), and through psycopg against `shoplake serve
--pg` on a free loopback port, on a new connection each time (connect, the session's catalog,
the query, every row fetched). Medians of the rounds; the ratio psycopg / query.

Part 2: CLIENTS connections, each running the report statements one after another for SECONDS;
every statement's latency, errors counted. Prints Markdown tables.
"""
import argparse
import os
import socket
import statistics
import subprocess
import threading
import time

import psycopg

p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
p.add_argument("lake")
p.add_argument("--rounds", type=int, default=5)
p.add_argument("--clients", type=int, default=20)
p.add_argument("--seconds", type=float, default=60)
p.add_argument("--bin", default=os.environ.get("SHOPLAKE_BIN", os.path.expanduser(
    "~/.cache/shoplake/target/release/shoplake")))
a = p.parse_args()

# Part 1: over the fact (the engine's work dominates) and over the marts (the protocol's does).
STATEMENTS = {
    "funnel by day, fact": """SELECT event_date,
        count(*) FILTER (WHERE event_type = 'view') AS views,
        count(*) FILTER (WHERE event_type = 'cart') AS carts,
        count(*) FILTER (WHERE event_type = 'purchase') AS purchases,
        count(DISTINCT user_id) AS users
        FROM model.fact_user_events GROUP BY event_date ORDER BY event_date""",
    "top 20 products, fact": """SELECT product_id, count(*) AS views
        FROM model.fact_user_events WHERE event_type = 'view'
        GROUP BY product_id ORDER BY views DESC, product_id LIMIT 20""",
    "funnel by day, mart": """SELECT event_date, views, carts, purchases, revenue, users
        FROM model.mart_funnel_daily ORDER BY event_date""",
    "top 20 products, month mart": """SELECT product_id, sum(views) AS views,
        sum(purchases) AS purchases, sum(revenue) AS revenue
        FROM model.mart_product_monthly GROUP BY product_id
        ORDER BY views DESC, product_id LIMIT 20""",
}

# Part 2: what the reports ask of the marts (a BI tool's dashboard refresh).
REPORT_STATEMENTS = [
    STATEMENTS["funnel by day, mart"],
    STATEMENTS["top 20 products, month mart"],
    """SELECT category_l1, sum(views) AS views, sum(purchases) AS purchases, sum(revenue) AS revenue
        FROM model.mart_product_monthly GROUP BY category_l1 ORDER BY revenue DESC""",
    """SELECT brand, sum(revenue) AS revenue FROM model.mart_product_monthly
        GROUP BY brand ORDER BY revenue DESC LIMIT 20""",
    """SELECT hour_of_day, event_type, sum(events) AS events FROM model.mart_hourly
        GROUP BY hour_of_day, event_type ORDER BY hour_of_day, event_type""",
    """SELECT event_date, sum(views) AS views, sum(purchases) AS purchases
        FROM model.mart_product_daily WHERE event_date BETWEEN DATE '2020-04-08' AND DATE '2020-04-14'
        GROUP BY event_date ORDER BY event_date""",
]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def median_of(f):
    times = []
    for _ in range(a.rounds):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def through_query(sql):
    subprocess.run([a.bin, "--lake", a.lake, "query", "-q", "-f", "csv", sql], check=True,
                   stdout=subprocess.DEVNULL)


def rows_through_query(sql):
    out = subprocess.run([a.bin, "--lake", a.lake, "query", "-q", "-f", "csv", sql], check=True,
                         capture_output=True, text=True).stdout
    return len(out.splitlines()) - 1


port = free_port()
conninfo = f"host=127.0.0.1 port={port} dbname=lake user=bench sslmode=disable"
server = subprocess.Popen([a.bin, "--lake", a.lake, "serve", "--pg", f"127.0.0.1:{port}",
                           "--pg-max-connections", str(a.clients + 4)],
                          stdout=subprocess.PIPE, text=True)
try:
    for _ in range(100):
        try:
            psycopg.connect(conninfo).close()
            break
        except psycopg.OperationalError:
            time.sleep(0.1)

    def through_psycopg(sql):
        with psycopg.connect(conninfo) as c:
            return c.execute(sql).fetchall()

    print(f"lake: {a.lake}; rounds: {a.rounds}\n")
    print("| statement | rows | shoplake query (s) | psycopg, new connection (s) | ratio |")
    print("|---|---:|---:|---:|---:|")
    for name, sql in STATEMENTS.items():
        rows = len(through_psycopg(sql))
        if rows != rows_through_query(sql):
            raise SystemExit(f"{name}: psycopg and shoplake query disagree on the rows")
        q = median_of(lambda: through_query(sql))
        pg = median_of(lambda: through_psycopg(sql))
        print(f"| {name} | {rows} | {q:.3f} | {pg:.3f} | {pg / q:.2f}x |", flush=True)

    latencies, errors, lock = [], [], threading.Lock()
    stop_at = time.perf_counter() + a.seconds

    def client(i):
        mine, failed = [], []
        with psycopg.connect(conninfo) as c:
            k = i
            while time.perf_counter() < stop_at:
                sql = REPORT_STATEMENTS[k % len(REPORT_STATEMENTS)]
                k += 1
                t = time.perf_counter()
                try:
                    c.execute(sql).fetchall()
                    mine.append(time.perf_counter() - t)
                except psycopg.Error as e:
                    failed.append(str(e))
        with lock:
            latencies.extend(mine)
            errors.extend(failed)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(a.clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    latencies.sort()
    q = statistics.quantiles(latencies, n=100)
    print(f"\n{a.clients} clients for {a.seconds:.0f} s, the {len(REPORT_STATEMENTS)} report statements in turn:\n")
    print("| statements | errors | per second | p50 (s) | p95 (s) | p99 (s) | max (s) |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    print(f"| {len(latencies)} | {len(errors)} | {len(latencies) / wall:.1f} | {q[49]:.3f} | "
          f"{q[94]:.3f} | {q[98]:.3f} | {latencies[-1]:.3f} |")
    if errors:
        print("\nfirst error:", errors[0])
finally:
    server.terminate()
    server.wait()
