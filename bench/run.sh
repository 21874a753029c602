#!/usr/bin/env bash
# shoplake benchmark: the same reduced ETL job on shoplake (`shoplake convert`), DuckDB, Polars and
# PySpark local[2], plus shoplake's real pipeline (ingest + run, then stage 2 over its fact table
# with `shoplake query` and with DuckDB on the same Parquet files), interleaved per round, timed
# with /usr/bin/time.
#
#   bench/run.sh [--rows N] [--rounds R]
#
# Defaults: --rows 66600000 (a full month), --rounds 1 (3 when N <= 10000000).
# Needs bench/setup.sh to have run. SHOPLAKE_BIN overrides the binary,
# BENCH_SPARK_DRIVER_MEMORY the Spark driver heap (default 16g), BENCH_ENGINES the engine list
# (default: shoplake shoplake-convert duckdb polars pyspark).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$HERE"

ROWS=66600000
ROUNDS=""
while [ $# -gt 0 ]; do
  case "$1" in
    --rows) ROWS="$2"; shift 2 ;;
    --rounds) ROUNDS="$2"; shift 2 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[[ "$ROWS" =~ ^[0-9]+$ ]] || { echo "run.sh: --rows must be a number" >&2; exit 2; }
if [ -z "$ROUNDS" ]; then
  if [ "$ROWS" -le 10000000 ]; then ROUNDS=3; else ROUNDS=1; fi
fi

BIN="${SHOPLAKE_BIN:-$HOME/.cache/shoplake/target/release/shoplake}"
PY="$HERE/.venv/bin/python"
SPARK_MEM="${BENCH_SPARK_DRIVER_MEMORY:-16g}"
ENGINES=(${BENCH_ENGINES:-shoplake shoplake-convert duckdb polars pyspark})
for e in "${ENGINES[@]}"; do
  case "$e" in shoplake|shoplake-convert|duckdb|polars|pyspark) ;;
    *) echo "run.sh: unknown engine $e in BENCH_ENGINES" >&2; exit 2 ;; esac
done
[ -x "$BIN" ] || { echo "run.sh: shoplake binary not found at $BIN (set SHOPLAKE_BIN)" >&2; exit 1; }
[ -x "$PY" ] || { echo "run.sh: no venv; run bench/setup.sh first" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "run.sh: /usr/bin/time (GNU time) is required" >&2; exit 1; }
export PYSPARK_PYTHON="$PY" PYSPARK_DRIVER_PYTHON="$PY"

mkdir -p data results
DATA="data/events-$ROWS.csv.gz"
if [ -s "$DATA" ]; then
  echo "run.sh: using cached $DATA ($(du -h "$DATA" | cut -f1))"
else
  echo "run.sh: generating $ROWS rows into $DATA"
  rm -f "data/events-$ROWS.partial.csv.gz"
  "$BIN" generate --rows "$ROWS" --out "data/events-$ROWS.partial.csv.gz" --quiet
  mv "data/events-$ROWS.partial.csv.gz" "$DATA"
fi

RUN="data/runs-$ROWS"          # per-run outputs and logs (gitignored)
rm -rf "$RUN"; mkdir -p "$RUN"
MEAS="$RUN/measurements.tsv"   # engine step round wall user sys maxrss_kb
SIZES="$RUN/sizes.tsv"         # engine what round bytes (Parquet files written, apparent size)
: > "$MEAS"; : > "$SIZES"

# timed ENGINE STEP ROUND STDOUT-FILE -- command...
timed() {
  local engine="$1" step="$2" round="$3" out="$4"; shift 5
  local tfile="$RUN/time.$engine.$step.$round"
  if ! /usr/bin/time -o "$tfile" -f '%e %U %S %M' "$@" > "$out" 2> "$RUN/$engine.$step.$round.stderr"; then
    echo "run.sh: FAILED: $engine $step (round $round); last lines of its stderr:" >&2
    tail -20 "$RUN/$engine.$step.$round.stderr" >&2
    exit 1
  fi
  local t; t="$(tail -1 "$tfile")"
  printf '%s\t%s\t%s\t%s\n' "$engine" "$step" "$round" "${t// /$'\t'}" >> "$MEAS"
  printf '  %-16s %-8s wall %7ss  user %7ss  sys %6ss  maxrss %8s KB\n' "$engine" "$step" $t
}

# untimed ENGINE STEP ROUND STDOUT-FILE -- command...  (checks run between timed steps)
untimed() {
  local engine="$1" step="$2" round="$3" out="$4"; shift 5
  if ! "$@" > "$out" 2> "$RUN/$engine.$step.$round.stderr"; then
    echo "run.sh: FAILED: $engine $step (round $round); last lines of its stderr:" >&2
    tail -20 "$RUN/$engine.$step.$round.stderr" >&2
    exit 1
  fi
}

# pqbytes ENGINE WHAT ROUND DIR: total size of the Parquet files under DIR, into sizes.tsv
pqbytes() {
  local b; b="$(find "$4" -name '*.parquet' -type f -printf '%s\n' | awk '{s += $1} END {printf "%.0f\n", s}')"
  printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$b" >> "$SIZES"
}

q() { "$BIN" --lake data/lake-tmp query -q -f json "$1"; }

FACT=data/lake-tmp/model/fact_user_events
# Grouped by the date itself, formatted after grouping (the same SQL as stage2_duckdb.py).
FUNNEL_SQL="SELECT CAST(event_date AS VARCHAR) AS d, event_type, n FROM (SELECT event_date, event_type, count(*) AS n FROM model.fact_user_events GROUP BY event_date, event_type) ORDER BY 1, 2"
TOP_SQL="SELECT product_id, count(*) AS purchases FROM model.fact_user_events WHERE event_type = 'purchase' GROUP BY product_id ORDER BY purchases DESC, product_id LIMIT 20"

stage2_shoplake() {
  local r="$1" o="$2"
  timed shoplake query "$r" "$o.funnel" -- "$BIN" --lake data/lake-tmp query -q -f json "$FUNNEL_SQL"
  timed shoplake query2 "$r" "$o.top" -- "$BIN" --lake data/lake-tmp query -q -f json "$TOP_SQL"
  timed shoplake startup "$r" "$o.select1" -- "$BIN" --lake data/lake-tmp query -q -f json "SELECT 1 AS x"
}

stage2_duckdb() {
  local r="$1"
  timed duckdb-over-fact stage2 "$r" "$RUN/duckdb-over-fact.$r.json" -- "$PY" "$HERE/stage2_duckdb.py" "$FACT"
}

run_shoplake() {
  local r="$1"
  rm -rf data/lake-tmp
  timed shoplake ingest "$r" "$RUN/shoplake.ingest.$r.stdout" -- "$BIN" --lake data/lake-tmp ingest -q "$DATA"
  timed shoplake run "$r" "$RUN/shoplake.run.$r.stdout" -- "$BIN" --lake data/lake-tmp run -q
  # Stage 2 over the model table (timed separately; not part of the pipeline's time): the two
  # queries as `shoplake query` processes (start-up included: the command prints no timing of
  # its own), a `SELECT 1` process for the start-up alone, and the same two queries on DuckDB
  # over the fact table's Parquet files (timed inside the script). Who goes first alternates.
  local o="$RUN/shoplake.$r.query"
  if ((r % 2)); then stage2_shoplake "$r" "$o"; stage2_duckdb "$r"
  else stage2_duckdb "$r"; stage2_shoplake "$r" "$o"; fi
  q "SELECT count(*) AS n FROM clean.events" > "$o.clean"
  q "SELECT count(*) AS n FROM model.fact_user_events" > "$o.fact"
  pqbytes shoplake lake "$r" data/lake-tmp
  pqbytes shoplake clean "$r" data/lake-tmp/clean/events
  pqbytes shoplake fact "$r" "$FACT"
}

run_convert() {
  local r="$1" out=data/out-shoplake-convert
  timed shoplake-convert convert "$r" "$RUN/shoplake-convert.$r.report.json" -- \
    "$BIN" convert "$DATA" --out "$out" --overwrite -q -f json
  # agreement figures from the Parquet output, with pyarrow (untimed)
  untimed shoplake-convert check "$r" "$RUN/shoplake-convert.$r.json" -- \
    "$PY" "$HERE/check_parquet.py" "$out" --report "$RUN/shoplake-convert.$r.report.json"
  pqbytes shoplake-convert out "$r" "$out"
}

run_peer() {
  local e="$1" r="$2"
  local out="$RUN/$e.$r.json"
  if [ "$e" = pyspark ]; then
    # through spark-submit so that /usr/bin/time waits for (and measures) the JVM
    timed "$e" etl "$r" "$out" -- "$HERE/.venv/bin/spark-submit" --master 'local[2]' \
      --driver-memory "$SPARK_MEM" --conf spark.ui.showConsoleProgress=false "$HERE/etl_pyspark.py" "$DATA" "data/out-$e"
  else
    timed "$e" etl "$r" "$out" -- "$PY" "$HERE/etl_$e.py" "$DATA" "data/out-$e"
  fi
  pqbytes "$e" out "$r" "data/out-$e"
}

echo "run.sh: $ROWS rows, $ROUNDS round(s), engines: ${ENGINES[*]}"
n=${#ENGINES[@]}
for ((r = 1; r <= ROUNDS; r++)); do
  echo "round $r/$ROUNDS"
  # rotate the order each round so that no engine always runs first (cold caches) or last
  for ((i = 0; i < n; i++)); do
    e="${ENGINES[$(((i + r - 1) % n))]}"
    case "$e" in
      shoplake) run_shoplake "$r" ;;
      shoplake-convert) run_convert "$r" ;;
      *) run_peer "$e" "$r" ;;
    esac
  done
done

# Versions and machine details for the report.
{
  echo "shoplake	$("$BIN" --version 2>&1 | head -1)"
  "$PY" -c 'import duckdb, polars, pyarrow, pyspark, sys
print("python\t" + sys.version.split()[0])
for m in (duckdb, polars, pyarrow, pyspark): print(m.__name__ + "\t" + m.__version__)'
  echo "java	$(java -version 2>&1 | head -1)"
} > "$RUN/versions.tsv"

mkdir -p results
OUT="results/$(date -u +%F)-$ROWS.md"
"$PY" "$HERE/report.py" --run "$RUN" --rows "$ROWS" --rounds "$ROUNDS" --data "$DATA" \
  --spark-memory "$SPARK_MEM" --out "$OUT.tmp"
mv "$OUT.tmp" "$OUT"
echo "run.sh: wrote $OUT"
