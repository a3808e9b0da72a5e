#!/usr/bin/env bash
# Test helper: makes sure the PyPI distribution NAME==VERSION is installed in the project-local
# venv VENV_DIR and prints the venv's directory. Usage: pip-venv.sh VENV_DIR NAME VERSION
# Exit 0: the venv is on stdout. Exit 3: it cannot be had here (the caller skips; under
# CHRONICLE_REQUIRE_ALL=1 it fails).
# Tests pin VERSION: they depend on exact behaviour, so an upgrade is a deliberate change.
set -u
venv=${1:?usage: pip-venv.sh VENV_DIR NAME VERSION}
name=${2:?usage: pip-venv.sh VENV_DIR NAME VERSION}
version=${3:?usage: pip-venv.sh VENV_DIR NAME VERSION}
py="$venv/bin/python"
have() {
    "$py" -c "import importlib.metadata as m, sys; sys.exit(m.version('$name') != '$version')" \
        >/dev/null 2>&1
}
if ! have; then
    mkdir -p "$(dirname "$venv")" || exit 3
    # Test binaries run in parallel: one installs, the others wait (bounded) for it.
    exec 9>"$venv.lock" || exit 3
    timeout 900 flock 9 || { echo "pip-venv.sh: timed out waiting for $venv.lock" >&2; exit 3; }
    if ! have; then
        echo "pip-venv.sh: installing $name==$version into $venv" >&2
        # Bounded: a hung index must not hang the test suite.
        { [ -x "$py" ] || timeout 120 python3 -m venv "$venv" >&2; } \
            && timeout 600 "$py" -m pip install --disable-pip-version-check --quiet \
                "$name==$version" >&2 \
            || true
    fi
fi
if ! have; then
    echo "pip-venv.sh: $name==$version (PyPI) not available and not installable" >&2
    exit 3
fi
echo "$venv"
