#!/usr/bin/env python3
"""The store's database into the lake: load, snapshot + stream, lag under load, WAL when quiet.

    cdc.py WORKDIR [--rows 2000000] [--rate 5000] [--seconds 60] [--quiet-seconds 120]
           [--bin SHOPLAKE]

A throwaway PostgreSQL (initdb + pg_ctl from /usr/lib/postgresql/*/bin, wal_level = logical,
a free loopback port; run as the `postgres` user when this runs as root) in WORKDIR, then:

1. `shoplake generate` ROWS events; `oltp init`; `oltp load` (events/s into PostgreSQL).
2. `cdc --catch-up`: the initial snapshot of every table into raw.cdc_* (rows/s), then the
   stream of ROWS events' worth of changes: a second export's events inserted by
   `oltp load` while no cdc runs, caught up by `cdc --catch-up` (row images/s).
3. Lag: `cdc` streaming while `oltp simulate --rate RATE` runs for SECONDS. A transaction's lag
   is the time from its commit (`_commit_time`) to the landing that made it queryable (the
   `landed_at` of the first meta.cdc_progress row at or past its LSN); p50/p95/max over the
   transactions, from the lake itself.
4. WAL when quiet: `cdc --heartbeat 1s` streaming while nothing touches the store's tables but
   another table of the database is written all the time (so WAL moves); the slot's retained
   WAL (pg_current_wal_lsn() - restart_lsn) sampled every second for QUIET_SECONDS.

Prints Markdown.
"""
import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
p.add_argument("workdir")
p.add_argument("--rows", type=int, default=2_000_000)
p.add_argument("--rate", type=int, default=5000)
p.add_argument("--seconds", type=float, default=60)
p.add_argument("--quiet-seconds", type=float, default=120)
p.add_argument("--bin", default=os.environ.get("SHOPLAKE_BIN", os.path.expanduser(
    "~/.cache/shoplake/target/release/shoplake")))
a = p.parse_args()

work = os.path.abspath(a.workdir)
if os.path.exists(work):
    shutil.rmtree(work)
os.makedirs(work)
ROOT = os.geteuid() == 0
pgbin = sorted(
    (d for d in os.listdir("/usr/lib/postgresql") if os.path.exists(f"/usr/lib/postgresql/{d}/bin/initdb")),
    key=int)[-1]
PGBIN = f"/usr/lib/postgresql/{pgbin}/bin"
pgdir = os.path.join(work, "pg")
os.makedirs(pgdir)
if ROOT:
    shutil.chown(work, "postgres")
    shutil.chown(pgdir, "postgres")


def as_pg(args, **kw):
    cmd = (["runuser", "-u", "postgres", "--"] if ROOT else []) + args
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


port = free_port()
as_pg([f"{PGBIN}/initdb", "-D", f"{pgdir}/data", "-U", "postgres", "--auth=trust", "-E", "UTF8",
       "--no-locale", "--no-sync"])
with open(f"{pgdir}/data/postgresql.auto.conf", "w") as f:
    f.write(f"listen_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = '{pgdir}'\n"
            "wal_level = logical\nmax_replication_slots = 8\nmax_wal_senders = 8\n"
            "shared_buffers = 1GB\nmax_wal_size = 4GB\nsynchronous_commit = on\n")
as_pg([f"{PGBIN}/pg_ctl", "-D", f"{pgdir}/data", "-l", f"{pgdir}/log", "-w", "start"])
URL = f"postgresql://postgres@127.0.0.1:{port}/store"


def psql(sql, db="store"):
    out = subprocess.run([f"{PGBIN}/psql", "-X", "-qAt", "-h", "127.0.0.1", "-p", str(port), "-U",
                          "postgres", "-d", db, "-c", sql], check=True, capture_output=True, text=True)
    return out.stdout.strip()


def shoplake(*args, lake=None):
    cmd = [a.bin] + (["--lake", lake] if lake else []) + list(args)
    t = time.time()
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"shoplake {' '.join(args)} failed: {out.stderr}")
    return out.stdout, time.time() - t


def lake_query(lake, sql):
    out, _ = shoplake("query", "-q", "-f", "json", sql, lake=lake)
    return [json.loads(line) for line in out.splitlines() if line.strip()]


try:
    psql("CREATE DATABASE store", db="postgres")
    lake = os.path.join(work, "lake")
    export1 = os.path.join(work, "events1.csv.gz")
    export2 = os.path.join(work, "events2.csv.gz")
    shoplake("generate", "--rows", str(a.rows), "--days", "7", "--seed", "1", "--out", export1)
    shoplake("generate", "--rows", str(a.rows), "--days", "7", "--seed", "2", "--out", export2)
    shoplake("oltp", "init", "--db", URL)

    # 1. The load.
    out, load_s = shoplake("oltp", "load", export1, "--db", URL)
    events1 = int(psql("SELECT count(*) FROM events"))
    print(f"## oltp load\n\n{events1:,} events of {a.rows:,} lines in {load_s:.1f} s: "
          f"{events1 / load_s:,.0f} events/s\n")
    print("```\n" + out.strip() + "\n```\n")

    # 2. Snapshot, then a second export streamed.
    out, snap_s = shoplake("cdc", "--db", URL, "--catch-up", lake=lake)
    print("## cdc --catch-up (snapshot)\n\n```\n" + out.strip() + "\n```\n")
    rows = sum(int(psql(f"SELECT count(*) FROM {t}")) for t in
               ["users", "brands", "categories", "products", "sessions", "events"])
    print(f"snapshot: {rows:,} rows, command {snap_s:.1f} s end to end: {rows / snap_s:,.0f} rows/s\n")
    out, load2_s = shoplake("oltp", "load", export2, "--db", URL)
    before = int(psql("SELECT count(*) FROM events"))
    out, stream_s = shoplake("cdc", "--db", URL, "--catch-up", lake=lake)
    print("## cdc --catch-up (stream of a second export)\n\n```\n" + out.strip() + "\n```\n")
    streamed = before - events1
    changes = [l for l in out.splitlines() if l.startswith("streamed:")]
    print(f"stream: {streamed:,} events (plus their new users, sessions, products) in "
          f"{stream_s:.1f} s end to end: {streamed / stream_s:,.0f} events/s\n")

    # 3. Lag under a steady load.
    cdc = subprocess.Popen([a.bin, "--lake", lake, "cdc", "--db", URL, "--heartbeat", "5s",
                            "--flush-interval", "1s"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, text=True)
    time.sleep(3)
    start_lsn = int(psql("SELECT (pg_current_wal_lsn() - '0/0')::bigint"))
    sim, sim_s = shoplake("oltp", "simulate", "--db", URL, "--rate", str(a.rate), "--duration",
                          f"{int(a.seconds)}s", "--seed", "9")
    time.sleep(5)
    cdc.terminate()
    cdc.wait(timeout=60)
    print(f"## lag at {a.rate:,} events/s asked\n\n```\n{sim.strip()}\n```\n")
    lags = lake_query(lake, f"""
        WITH tx AS (SELECT DISTINCT _lsn, _commit_time FROM raw.cdc_events
                    WHERE _op = 'insert' AND _lsn >= {start_lsn}),
             landing AS (SELECT lsn, landed_at FROM meta.cdc_progress WHERE phase = 'stream')
        SELECT CAST(min(CAST(l.landed_at AS BIGINT)) - CAST(tx._commit_time AS BIGINT) AS DOUBLE) / 1e6 AS lag
        FROM tx JOIN landing l ON l.lsn >= tx._lsn GROUP BY tx._lsn, tx._commit_time""")
    values = sorted(r["lag"] for r in lags)
    if values:
        q = lambda f: values[min(len(values) - 1, int(f * len(values)))]
        print(f"| transactions | p50 | p95 | p99 | max |\n|---:|---:|---:|---:|---:|\n"
              f"| {len(values):,} | {q(0.5):.3f} s | {q(0.95):.3f} s | {q(0.99):.3f} s | "
              f"{values[-1]:.3f} s |\n")

    # 4. Retained WAL while the store's tables are quiet and another table is written.
    psql("CREATE TABLE IF NOT EXISTS side_traffic (id bigserial PRIMARY KEY, payload text)")
    cdc = subprocess.Popen([a.bin, "--lake", lake, "cdc", "--db", URL, "--heartbeat", "1s"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    stop = threading.Event()

    def side():
        while not stop.is_set():
            psql("INSERT INTO side_traffic (payload) SELECT repeat('x', 200) FROM generate_series(1, 2000)")
            time.sleep(0.2)

    t = threading.Thread(target=side)
    t.start()
    samples = []
    wal_start = int(psql("SELECT (pg_current_wal_lsn() - '0/0')::bigint"))
    end = time.time() + a.quiet_seconds
    while time.time() < end:
        time.sleep(1)
        samples.append(int(psql("SELECT (pg_current_wal_lsn() - restart_lsn)::bigint FROM "
                                "pg_replication_slots WHERE slot_name = 'shoplake'")))
    written = int(psql("SELECT (pg_current_wal_lsn() - '0/0')::bigint")) - wal_start
    stop.set()
    t.join()
    cdc.terminate()
    cdc.wait(timeout=60)
    print(f"## retained WAL, quiet store tables, heartbeat 1 s, {a.quiet_seconds:.0f} s\n\n"
          f"WAL written meanwhile by another table: {written / 2**20:,.1f} MiB; the slot's retained "
          f"WAL: median {statistics.median(samples) / 2**20:.2f} MiB, max {max(samples) / 2**20:.2f} MiB, "
          f"last {samples[-1] / 2**20:.2f} MiB\n")
finally:
    as_pg([f"{PGBIN}/pg_ctl", "-D", f"{pgdir}/data", "-m", "fast", "-w", "stop"])
