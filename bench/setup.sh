#!/usr/bin/env bash
# Create bench/.venv with the pinned engines from bench/requirements.txt. Idempotent.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PY="${PYTHON:-python3.11}"
VENV="$HERE/.venv"
REQ="$HERE/requirements.txt"
STAMP="$VENV/.requirements.sha256"

command -v "$PY" >/dev/null || { echo "setup: $PY not found (set PYTHON=...)" >&2; exit 1; }
if command -v java >/dev/null; then
  echo "setup: java: $(java -version 2>&1 | head -1)"
else
  echo "setup: WARNING: java not found; PySpark will not run" >&2
fi

if [ -x "$VENV/bin/python" ]; then
  echo "setup: venv exists at $VENV"
else
  echo "setup: creating venv at $VENV with $($PY --version)"
  "$PY" -m venv "$VENV"
fi

want="$(sha256sum "$REQ" | cut -d' ' -f1)"
have="$(cat "$STAMP" 2>/dev/null || true)"
if [ "$want" = "$have" ] && "$VENV/bin/python" -c 'import duckdb, polars, pyarrow, pyspark, psycopg' 2>/dev/null; then
  echo "setup: pinned packages already installed (requirements.txt unchanged)"
else
  echo "setup: installing pinned packages from $REQ"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQ"
  echo "$want" > "$STAMP"
  echo "setup: installed"
fi

echo "setup: versions:"
"$VENV/bin/python" - <<'PY'
import duckdb, polars, pyarrow, pyspark, sys
print(f"  python  {sys.version.split()[0]}")
for m in (duckdb, polars, pyarrow, pyspark):
    print(f"  {m.__name__:8s}{m.__version__}")
PY
