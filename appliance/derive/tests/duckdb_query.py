"""Runs SQL against one Parquet file with DuckDB and prints the results as JSON.

Usage: python duckdb_query.py FILE < queries.json
stdin: a JSON list of SQL strings, where {f} stands for read_parquet(FILE).
stdout: {"duckdb": VERSION, "results": [...]}, per query its rows as lists; values that JSON cannot carry exactly (decimals, huge integers) must be cast to VARCHAR by the
query itself; anything else non-JSON is printed with str().
"""
import json
import sys

import duckdb

path = sys.argv[1]
source = "read_parquet('{}')".format(path.replace("'", "''"))
con = duckdb.connect()
out = []
for sql in json.load(sys.stdin):
    rel = con.sql(sql.replace("{f}", source))
    out.append([list(r) for r in rel.fetchall()])
json.dump({"duckdb": duckdb.__version__, "results": out}, sys.stdout, default=str)
