"""A libpq-based Python client of `shoplake serve --pg`: psycopg with a bound parameter, and
pandas.read_sql_query, as a notebook uses them. Prints one JSON object for the Rust test.

Usage: python lake_client.py DSN
"""

import json
import sys
import warnings

import pandas as pd
import psycopg


def main(dsn: str) -> None:
    out = {}
    with psycopg.connect(dsn, autocommit=True) as conn:
        out["server_version"] = conn.info.server_version
        with conn.cursor() as cur:
            cur.execute(
                "SELECT count(*) FROM model.fact_user_events WHERE event_type = %s",
                ("view",),
            )
            out["views"] = cur.fetchone()[0]
            cur.execute("SELECT version()")
            out["version"] = cur.fetchone()[0]
        with warnings.catch_warnings():
            # pandas asks for SQLAlchemy connectables; a DBAPI connection works and warns.
            warnings.simplefilter("ignore", UserWarning)
            frame = pd.read_sql_query(
                "SELECT event_type, count(*) AS n FROM model.fact_user_events "
                "GROUP BY event_type ORDER BY event_type",
                conn,
            )
        out["by_type"] = {row.event_type: int(row.n) for row in frame.itertuples()}
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1])
