#!/usr/bin/env bash
# Test helper: prints the directory holding a real `prometheus` and `promtool`, installing the
# Debian package `prometheus` when they are missing. Exit 3: the caller skips (fails under
# CHRONICLE_REQUIRE_ALL=1).
set -u
root=$(cd "$(dirname "$0")/../../.." && pwd)
exec "$root/.ci/tools/apt-tool.sh" prometheus prometheus promtool
