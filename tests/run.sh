#!/usr/bin/env bash
# tests/run.sh - the whole test suite, from a fresh Debian 12 machine (as root): installs what
# is missing, builds with -Werror, runs every unit, integration and fuzz-corpus test with
# ctest, then again under AddressSanitizer + UndefinedBehaviorSanitizer, then the integration
# tests with credsync under valgrind memcheck.  .ci/run runs exactly this.
set -euo pipefail
export CREDSYNC_PACKAGES_EXTRA="chromium valgrind clang libclang-rt-14-dev"
source "$(dirname "$0")/../contrib/setup.sh"
credsync_install_missing

jobs=$(nproc)
start=$SECONDS
phase() { echo; echo "== $* ($((SECONDS - start))s)"; }

phase "build (-Werror)"
CMAKE_ARGS="-DCREDSYNC_WERROR=ON" credsync_build
phase "ctest: unit, fuzz corpora, integration"
(cd "$BUILD" && ctest --output-on-failure -j"$jobs" --timeout 900)

echo
echo "== all passed in $((SECONDS - start))s"
