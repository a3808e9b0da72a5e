#!/usr/bin/env bash
# Test helper: prints the python of a project-local venv holding DuckDB, installed if missing.
# Usage: duckdb.sh VENV_DIR (the test passes target/test-tools/duckdb).
# Exit 3: DuckDB cannot be had here (the caller skips; under CHRONICLE_REQUIRE_ALL=1 it fails).
# Pinned: the test compares exact values. 2.0 is the first to read Parquet
# TIMESTAMP(NANOS, UTC) as TIMESTAMPTZ_NS (1.x truncates to µs).
set -u
root=$(cd "$(dirname "$0")/../../.." && pwd)
venv=$("$root/.ci/tools/pip-venv.sh" "${1:?usage: duckdb.sh VENV_DIR}" duckdb 2.0.0) || exit 3
echo "$venv/bin/python"
