#!/usr/bin/env bash
# Test helper: prints the path of the zstd CLI (the seekable tests' reference decoder),
# installing the Debian package `zstd` when it is missing. Exit 3: the caller skips (fails
# under CHRONICLE_REQUIRE_ALL=1).
set -u
root=$(cd "$(dirname "$0")/../../.." && pwd)
dir=$("$root/.ci/tools/apt-tool.sh" zstd zstd) || exit 3
echo "$dir/zstd"
