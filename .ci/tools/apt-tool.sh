#!/usr/bin/env bash
# Test helper: makes sure the commands BIN... are on this machine, installing the Debian package
# PACKAGE when one is missing, and prints the directory of the first.
# Usage: apt-tool.sh PACKAGE BIN [BIN...]
# Exit 0: the directory is on stdout. Exit 3: cannot be had here (the caller skips; under
# CHRONICLE_REQUIRE_ALL=1 it fails).
set -u
package=${1:?usage: apt-tool.sh PACKAGE BIN [BIN...]}
shift
[ $# -gt 0 ] || { echo "usage: apt-tool.sh PACKAGE BIN [BIN...]" >&2; exit 2; }
have() { for b in "$@"; do command -v "$b" >/dev/null 2>&1 || return 1; done; }
if ! have "$@"; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "apt-tool.sh: installing the Debian package $package" >&2
        export DEBIAN_FRONTEND=noninteractive
        # Bounded: a hung mirror must not hang the test suite.
        timeout 300 apt-get install -y --no-install-recommends "$package" >&2 \
            || { timeout 120 apt-get update >&2 \
                && timeout 300 apt-get install -y --no-install-recommends "$package" >&2; } \
            || true
    fi
fi
if ! have "$@"; then
    echo "apt-tool.sh: $* not available and the Debian package $package not installable" >&2
    exit 3
fi
dirname "$(command -v "$1")"
