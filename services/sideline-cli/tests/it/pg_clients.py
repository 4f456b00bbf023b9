"""The archive's PostgreSQL-protocol server as a Python analyst uses it: psycopg 3 and pandas.

Run by pg_server.rs with the connection string in SIDELINE_PG_DSN and a team in SIDELINE_TEAM;
prints one JSON object of what each client got, for the Rust test to compare with DataFusion's
own answers.
"""

import json
import os
import warnings

import pandas as pd
import psycopg

dsn = os.environ["SIDELINE_PG_DSN"]
team = os.environ["SIDELINE_TEAM"]
out = {}

PER_PLAYER = (
    "SELECT player, count(*) AS seconds, max(hsr_m) AS hsr_m "
    "FROM metrics WHERE team = %s AND source = 'live' GROUP BY player ORDER BY player"
)

with psycopg.connect(dsn) as conn:
    out["read_only_param"] = conn.info.parameter_status("default_transaction_read_only")
    out["tls"] = conn.info.pgconn.ssl_in_use
    # psycopg sends BEGIN before the first statement, then the query over the extended protocol
    # with the team as a bound parameter.
    with conn.cursor() as cur:
        cur.execute(PER_PLAYER, (team,))
        out["psycopg"] = [[p, int(n), float(h)] for p, n, h in cur.fetchall()]
        cur.execute("SELECT max(t) AS last FROM metrics WHERE team = %s", (team,))
        (last,) = cur.fetchone()
        out["last_t"] = last.isoformat()
    conn.commit()

    with warnings.catch_warnings():
        # pandas would rather have an SQLAlchemy engine; a DB-API connection works and is what
        # a notebook has at hand.
        warnings.simplefilter("ignore", UserWarning)
        df = pd.read_sql(
            "SELECT player, t, distance_m, hsr_m, risk_score FROM metrics "
            "WHERE team = %(team)s AND source = 'live' ORDER BY player, t",
            conn,
            params={"team": team},
        )
    out["pandas"] = {
        "columns": list(df.columns),
        "rows": len(df),
        "t_dtype": str(df["t"].dtype),
        "hsr_sum_of_max": float(df.groupby("player")["hsr_m"].max().sum()),
    }
    conn.commit()

    refused = {}
    for name, sql in {
        "create_external_table": "CREATE EXTERNAL TABLE x STORED AS PARQUET LOCATION '/etc/'",
        "create_table_as": "CREATE TABLE x AS SELECT 1",
        "insert": "INSERT INTO metrics (player) VALUES ('x')",
        "copy": "COPY metrics TO '/tmp/sideline-copy.csv'",
        "set_engine": "SET datafusion.execution.target_partitions = 64",
    }.items():
        try:
            with conn.cursor() as cur:
                cur.execute(sql)
            refused[name] = "allowed"
        except psycopg.Error as e:
            refused[name] = e.sqlstate
        conn.rollback()
    out["refused"] = refused

print(json.dumps(out))
