#!/usr/bin/env python3
"""Stage 2 A/B: `shoplake query` processes of one or more shoplake binaries over a lake's
month, interleaved round by round (the order reverses every round), with DuckDB's stage 2
(stage2_duckdb.py) over the same fact table once per round. For changes to the query path or
to start-up, where a full bench/run.sh would measure the same thing with one sample a round.

Prints the median, minimum and maximum process wall time of each binary and query (SELECT 1,
the funnel by day and the top 20 products: run.sh's SQL), then, for binaries that have
`query --timing`, the statement's time inside the process (planning and execution, as DuckDB's
figure is), then DuckDB's in-script times.

    stage2_ab.py [--rounds N] LAKE BIN [BIN ...]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
FUNNEL = ("SELECT CAST(event_date AS VARCHAR) AS d, event_type, n FROM (SELECT event_date, event_type, "
          "count(*) AS n FROM model.fact_user_events GROUP BY event_date, event_type) ORDER BY 1, 2")
TOP = ("SELECT product_id, count(*) AS purchases FROM model.fact_user_events WHERE event_type = 'purchase' "
       "GROUP BY product_id ORDER BY purchases DESC, product_id LIMIT 20")
QUERIES = {"select 1": "SELECT 1 AS x", "funnel": FUNNEL, "top 20": TOP}

p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
p.add_argument("--rounds", type=int, default=11)
p.add_argument("lake")
p.add_argument("bins", nargs="+")
a = p.parse_args()
fact = os.path.join(a.lake, "model", "fact_user_events")
python = os.path.join(HERE, ".venv", "bin", "python")
if not os.path.isdir(fact):
    sys.exit(f"stage2_ab: {fact} does not exist (run ingest + run on the lake first)")

# Binaries whose `query` reports its own time (`--timing`, a line on standard error).
timed = {b for b in a.bins
         if "--timing" in subprocess.run([b, "query", "--help"], capture_output=True, text=True).stdout}
times = {(b, q): [] for b in a.bins for q in QUERIES}
inside = {(b, q): [] for b in timed for q in QUERIES}
duck = {"funnel": [], "top 20": []}
for r in range(a.rounds):
    for b in a.bins if r % 2 == 0 else a.bins[::-1]:
        for q, sql in QUERIES.items():
            timing = ["--timing"] if b in timed else []
            t = time.perf_counter()
            done = subprocess.run([b, "--lake", a.lake, "query", "-q", "-f", "json", *timing, sql],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                  check=True)
            times[(b, q)].append(time.perf_counter() - t)
            if timing:
                line = [x for x in done.stderr.splitlines() if x.startswith("Time: ")][-1]
                inside[(b, q)].append(float(line.split()[1]))
    out = subprocess.run([python, os.path.join(HERE, "stage2_duckdb.py"), fact],
                         capture_output=True, text=True, check=True).stdout
    d = json.loads(out)
    duck["funnel"].append(d["funnel_s"])
    duck["top 20"].append(d["top_s"])


def line(who, q, v):
    print(f"| {who} | {q} | {statistics.median(v):.3f} | {min(v):.3f} | {max(v):.3f} |")


print(f"{a.rounds} rounds on {a.lake}\n")
print("| binary | query | median s | min s | max s |\n|---|---|---:|---:|---:|")
for (b, q), v in times.items():
    line(f"`{b}` (process)", q, v)
for (b, q), v in inside.items():
    line(f"`{b}` (in process)", q, v)
for q, v in duck.items():
    line("DuckDB (in script)", q, v)
