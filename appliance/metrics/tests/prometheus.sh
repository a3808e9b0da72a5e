#!/usr/bin/env bash
# Test helper: makes sure a real Prometheus (and promtool) is on this machine and prints the
# directory that holds them. Installs the Debian package `prometheus` when it is missing.
# Exit 0: the directory is on stdout. Exit 3: cannot be had here (the caller SKIPs loudly).
set -u
have() { command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; }
if ! have; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "prometheus.sh: installing the Debian package prometheus" >&2
        export DEBIAN_FRONTEND=noninteractive
        # Bounded: a hung mirror must not hang the test suite.
        timeout 300 apt-get install -y --no-install-recommends prometheus >&2 \
            || { timeout 120 apt-get update >&2 && timeout 300 apt-get install -y --no-install-recommends prometheus >&2; } \
            || true
    fi
fi
if ! have; then
    echo "prometheus.sh: prometheus/promtool not available and not installable" >&2
    exit 3
fi
dirname "$(command -v prometheus)"
