#!/usr/bin/env bash
# Test helper: prints the path of the zstd CLI (the seekable tests' reference decoder),
# installing the Debian package `zstd` when it is missing. Exit 3: the caller SKIPs loudly.
set -u
root=$(cd "$(dirname "$0")/../../.." && pwd)
dir=$("$root/.ci/tools/apt-tool.sh" zstd zstd) || exit 3
echo "$dir/zstd"
