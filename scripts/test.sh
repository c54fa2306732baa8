#!/usr/bin/env bash
# The whole test suite on a fresh Debian 12 machine: installs packages, builds, runs ctest.
# Extra arguments go to ctest (e.g. scripts/test.sh -L unit, or -R split).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/install-deps.sh"
"$root/scripts/build.sh"
build="${BUILD_DIR:-$root/build}"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1
cd "$build"
ctest --output-on-failure --timeout 900 "$@"
